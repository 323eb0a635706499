"""`make analyze DIGIT=4`: a self-contained HTML report on how the CNN sees one digit.

`build_report` evaluates the model on the test set, picks the contrast digit (the one most
often confused with DIGIT unless given), and runs the report's sections in order. Each section
writes its figures (PNG, with the figure's numbers in an .npz beside it) and CSV tables, and
returns a `Section`; `index.html` and `summary.json` are built from those. `run_analyze` (the
CLI entry) builds everything in a temporary folder that replaces `reports/digit-D` only when
the whole report is done, so a failed run leaves `reports/` as it was.

Fashion-MNIST (`make analyze DATASET=fashion CLASS=shirt`): the same report on one class, in
reports/fashion/class-6-shirt; `Context.dataset` gives the sections the class names ("Shirt")
and the noun ("class") they write where MNIST's say digits.

The package: `context` (what sections share and return: `Context`, `Section`, `Figure`,
`Table`), `sections` (the sections in page order, and how to add one), `html` (the page).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from analysis.report import sections as page
from analysis.report.context import Context
from analysis.report.html import render_html
from mnist_cnn.config import MAP_LAYERS
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import atomic_dir, sha256_file, write_bytes, write_json


def build_report(model, model_path, test_data, digit: int, out, contrast=None, samples=3,
                 cmap="viridis", layers=MAP_LAYERS, sections=None, seed=0,
                 dataset="mnist") -> dict:
    """Write the whole report for `digit` into the folder `out` (which must exist).

    Parameters
    ----------
    model : keras.Model, the trained network (float32, see `load_trained`).
    model_path : path of its file (named and hashed in summary.json).
    test_data : (x_test uint8 (N, 28, 28), y_test (N,)).
    digit : int, 0-9.
    out : folder to write into.
    contrast : int or None (None: the digit most often confused with `digit`).
    samples : int, images per digit in the samples figures.
    cmap : str, colormap of the activation figures.
    layers : sequence of map layers to draw.
    sections : list of section functions (default `sections.SECTIONS`, the whole page).
    seed : int, seed of the random ablations and the probe's folds.
    dataset : str, the data set of `test_data` ("mnist", "fashion"): the page and the figures
        name its classes ("Shirt") and say "class" where MNIST says "digit".

    Returns
    -------
    dict, the summary (also written to out/summary.json).
    """
    from analysis.compare import most_confused_with
    from mnist_cnn.data import to_input
    from mnist_cnn.evaluate import evaluate

    from mnist_cnn.datasets import get_dataset

    started = time.perf_counter()
    info = get_dataset(dataset)
    noun = info.class_noun
    if not 0 <= int(digit) <= 9:
        raise UserError(f"{noun} must be 0-9, got {digit}")
    if contrast is not None and (not 0 <= int(contrast) <= 9 or contrast == digit):
        raise UserError(f"contrast must be a {noun} 0-9 other than {digit}, got {contrast}")
    unknown = [name for name in layers if name not in MAP_LAYERS]
    if unknown:
        raise UserError(f"unknown layer {unknown[0]!r}; choose from {', '.join(MAP_LAYERS)}")
    x_test, y_test = test_data
    x, y = to_input(np.asarray(x_test)), np.asarray(y_test).astype(int)
    if not (y == digit).any():
        raise UserError(f"the test data has no images of {info.class_label(digit)}; check --data")
    evaluation = evaluate(model, x, y)
    source = "given"
    if contrast is None:
        contrast, source = most_confused_with(evaluation["confusion_matrix"], digit), "most confused"
    if not (y == contrast).any():
        raise UserError(f"the test data has no images of {info.class_label(contrast)}; check --data "
                        "or --contrast")
    ctx = Context(model=model, model_path=Path(model_path), out=Path(out), x_test=x, y_test=y,
                  digit=int(digit), contrast=int(contrast), contrast_source=source,
                  evaluation=evaluation, samples=samples, cmap=cmap, layers=tuple(layers),
                  seed=seed, dataset=info)
    done, seconds = [], {}
    for section in page.SECTIONS if sections is None else sections:
        t = time.perf_counter()
        done.append(section(ctx))
        seconds[done[-1].key] = round(time.perf_counter() - t, 2)

    summary = _summary(ctx, done, seconds)
    write_bytes(ctx.out / "index.html", render_html(ctx, done, summary).encode())
    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["files"] = sorted(str(p.relative_to(ctx.out)) for p in ctx.out.rglob("*")
                              if p.is_file()) + ["summary.json"]
    write_json(ctx.out / "summary.json", summary)
    return summary


def _summary(ctx: Context, sections: list, seconds: dict) -> dict:
    by_key = {s.key: s.summary for s in sections}
    ev = ctx.evaluation
    cm = ev["confusion_matrix"]
    return {
        "model": {"file": str(ctx.model_path), "sha256": sha256_file(ctx.model_path)},
        "test_accuracy": round(ev["accuracy"], 6), "test_loss": round(ev["loss"], 6),
        "dataset": ctx.dataset.name,
        "digit": ctx.digit, "contrast": ctx.contrast, "contrast_source": ctx.contrast_source,
        "class_name": ctx.dataset.class_name(ctx.digit),
        "contrast_name": ctx.dataset.class_name(ctx.contrast),
        "confusions_digit_contrast": {f"{ctx.digit}->{ctx.contrast}": int(cm[ctx.digit, ctx.contrast]),
                                      f"{ctx.contrast}->{ctx.digit}": int(cm[ctx.contrast, ctx.digit])},
        "effect_size": "ROC AUC of the map's per-image spatial mean, digit (positive) vs "
                       "contrast; ranked by |2 AUC - 1|, ties by |Cohen's d|",
        "top_maps": by_key.get("comparison", {}).get("top_maps"),
        "probe": by_key.get("probe"),
        "ablation": by_key.get("ablation"),
        "sections": by_key, "section_seconds": seconds,
    }


def run_analyze(args) -> int:
    """CLI entry: load the model and data, build the report atomically, print key numbers."""
    from mnist_cnn.cli import analyze_out_dir
    from mnist_cnn.data import load_dataset
    from mnist_cnn.datasets import get_dataset
    from mnist_cnn.model import load_trained

    info = get_dataset(getattr(args, "dataset", "mnist"))
    out = Path(args.out or analyze_out_dir(info.name, args.digit))
    # UserError for a missing/corrupt/foreign model, or one trained on the other data set
    model = load_trained(args.model, dataset=info.name)
    _, test = load_dataset(info.name, args.data or None)
    with atomic_dir(out) as tmp:
        summary = build_report(model, args.model, test, args.digit, tmp, contrast=args.contrast,
                               samples=args.samples, cmap=args.cmap, layers=args.layers,
                               dataset=info.name)
    name = info.class_label
    print(f"{info.class_noun} {name(summary['digit'])} vs {name(summary['contrast'])} "
          f"({summary['contrast_source']}); test accuracy {summary['test_accuracy']:.4%}")
    if summary.get("probe"):
        print(f"probe on conv_3: {summary['probe']['all_features']:.2%} cross-validated accuracy")
    if summary.get("ablation"):
        last = summary["ablation"]["rows"][-1]
        print(f"top {last['k']} conv_3 maps zeroed: accuracy {last['ranked_accuracy_a']:.2%} on "
              f"{name(summary['digit'])}, {last['ranked_accuracy_b']:.2%} on "
              f"{name(summary['contrast'])} "
              f"(random maps: {last['random_accuracy_a_mean']:.2%}, "
              f"{last['random_accuracy_b_mean']:.2%})")
    print(f"wrote {out}/index.html ({len(summary['files'])} files) in {summary['seconds']:.1f} s")
    return 0
