"""`make analyze DIGIT=4`: a self-contained HTML report on how the CNN sees one digit.

`build_report` evaluates the model on the test set, picks the contrast digit (the one most
often confused with DIGIT unless given), and runs the report's sections in order. Each section
writes its figures (PNG, with the figure's numbers in an .npz beside it) and CSV tables, and
returns a `Section`; `index.html` and `summary.json` are built from those. `write_report` builds
everything in a temporary folder that replaces the report folder only when the whole report is
done, so a failed run leaves `reports/` as it was. The layers come from the model
(`mnist_cnn.network.describe`): every map layer is drawn, and the ranking, probe, ablation and
OIPs study the last conv layer (`conv_3` of the series' network).

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
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import atomic_dir, sha256_file, write_bytes, write_json


def build_report(model, model_path, test_data, digit: int, out, contrast=None, samples=3,
                 cmap="viridis", layers=None, sections=None, seed=0,
                 dataset="mnist") -> dict:
    """Write the whole report for `digit` into the folder `out` (which must exist).

    Parameters
    ----------
    model : keras.Model, the trained network (float32, see `load_trained`).
    model_path : path of its file (named and hashed in summary.json), or None.
    test_data : (x_test uint8 (N, 28, 28), y_test (N,)).
    digit : int, a class index (0-9 for MNIST).
    out : folder to write into.
    contrast : int or None (None: the digit most often confused with `digit`).
    samples : int, images per digit in the samples figures.
    cmap : str, colormap of the activation figures.
    layers : sequence of map layers to draw (default every map layer of the model).
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

    from mnist_cnn.data.registry import get_dataset
    from mnist_cnn.network import describe

    started = time.perf_counter()
    info = get_dataset(dataset)
    net = describe(model, num_classes=info.num_classes)
    if net.last_conv is None:
        raise UserError("the report needs a model with a Conv2D layer")
    noun, top = info.class_noun, info.num_classes - 1
    if not 0 <= int(digit) <= top:
        raise UserError(f"{noun} must be 0-{top}, got {digit}")
    if contrast is not None and (not 0 <= int(contrast) <= top or contrast == digit):
        raise UserError(f"contrast must be a {noun} 0-{top} other than {digit}, got {contrast}")
    maps = [i.name for i in net.map_layers]
    layers = maps if layers is None else list(layers)
    unknown = [name for name in layers if name not in maps]
    if unknown:
        raise UserError(f"unknown layer {unknown[0]!r}; choose from {', '.join(maps)}")
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
    ctx = Context(model=model, model_path=Path(model_path) if model_path else None, out=Path(out),
                  x_test=x, y_test=y,
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
        "model": {"file": str(ctx.model_path) if ctx.model_path else None,
                  "sha256": sha256_file(ctx.model_path) if ctx.model_path else None},
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


def write_report(model, test_data, digit: int, out, model_path=None, **options) -> dict:
    """Build the report for `digit` in a temporary folder that replaces `out` when complete.

    Parameters
    ----------
    model : keras.Model, e.g. `mnist_cnn.load_model(path)`.
    test_data : (x_test uint8 (N, 28, 28), y_test (N,)), e.g. `mnist_cnn.load_dataset()[1]`.
    digit : int, the class to study.
    out : folder of the report (created or replaced).
    model_path : the model's file, recorded in summary.json (None: not recorded).
    **options : contrast, samples, cmap, layers, sections, seed, dataset (`build_report`).

    Returns
    -------
    dict, the summary (out/summary.json); out/index.html is the page.
    """
    with atomic_dir(Path(out)) as tmp:
        return build_report(model, model_path, test_data, digit, tmp, **options)
