"""`make analyze DIGIT=4`: a self-contained HTML report on how the CNN sees one digit.

`build_report` evaluates the model on the test set, picks the contrast digit (the one most
often confused with DIGIT unless given), and runs the report's sections in order. Each section
writes its figures (PNG, with the figure's numbers in an .npz beside it) and CSV tables, and
returns a `Section`; `index.html` and `summary.json` are built from those. `run_analyze` (the
CLI entry) builds everything in a temporary folder that replaces `reports/digit-D` only when
the whole report is done, so a failed run leaves `reports/` as it was.

How to add a section (e.g. OIPs):
    1. write `def my_section(ctx: Context) -> Section` (import heavy modules inside it);
       save figures with `ctx.figure(name, fig, caption, **arrays)` and tables with
       `ctx.table(name, caption, rows)`; use `ctx.model`, `ctx.digit`, `ctx.contrast`,
       `ctx.cmap`, `ctx.class_maps(label)`, `ctx.comparison()` (ranking of conv_3 maps);
    2. append it to SECTIONS below. Its `summary` dict lands in summary.json under
       "sections" -> its key, and its figures and tables appear in index.html.
"""

from __future__ import annotations

import csv
import html
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_cnn.config import MAP_LAYERS
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import atomic_dir, save_figure, save_npz, sha256_file, write_bytes, write_json

ABLATION_KS = (1, 2, 4, 8, 16, 32)
TOP_MAPS = 16  # rows of the ranking table in the report and in summary.json
REPORT_MAPS = 8  # OIPs per side in the digit report


@dataclass
class Figure:
    """A saved figure: PNG file, caption, and the .npz with the numbers it shows."""
    file: str
    caption: str
    data: str


@dataclass
class Table:
    """A table shown in the report; `file` is its CSV (all rows) when there is one."""
    caption: str
    rows: list  # list of dicts with the same keys
    file: str | None = None
    show: int | None = None  # rows shown in the HTML (default all)


@dataclass
class Section:
    key: str
    title: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@dataclass
class Context:
    """Everything the sections share. Built once by `build_report`."""
    model: object
    model_path: Path
    out: Path
    x_test: np.ndarray  # float32 (N, 28, 28, 1)
    y_test: np.ndarray
    digit: int
    contrast: int
    contrast_source: str
    evaluation: dict  # from mnist_cnn.evaluate.evaluate
    samples: int = 3
    cmap: str = "viridis"
    layers: tuple = MAP_LAYERS
    seed: int = 0
    cache: dict = field(default_factory=dict)

    def figure(self, name: str, fig, caption: str, **arrays) -> Figure:
        """Save `fig` as name.png and `arrays` as name.npz in the report folder."""
        save_figure(fig, self.out / f"{name}.png")
        save_npz(self.out / f"{name}.npz", **arrays)
        return Figure(f"{name}.png", caption, f"{name}.npz")

    def table(self, name: str | None, caption: str, rows: list, show=None) -> Table:
        """A table for the page; with a name, all rows are also written to name.csv."""
        if name:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _csv_value(v) for k, v in r.items()} for r in rows)
            write_bytes(self.out / f"{name}.csv", buffer.getvalue().encode())
        return Table(caption, rows, f"{name}.csv" if name else None, show)

    def indices(self, label: int) -> np.ndarray:
        """Test-set indices of all images of `label`."""
        return np.flatnonzero(self.y_test == label)

    def sample_indices(self, label: int) -> np.ndarray:
        """The first `samples` correctly classified test images of `label` (then any)."""
        idx = self.indices(label)
        right = idx[self.evaluation["predicted"][idx] == label]
        wrong = idx[self.evaluation["predicted"][idx] != label]
        return np.r_[right, wrong][:self.samples]

    def class_maps(self, label: int) -> dict:
        """{layer: maps} of every conv/pool layer for all test images of `label` (cached)."""
        key = ("maps", label)
        if key not in self.cache:
            from analysis.feature_maps import FeatureExtractor

            if "extractor" not in self.cache:
                self.cache["extractor"] = FeatureExtractor(self.model, MAP_LAYERS)
            self.cache[key] = self.cache["extractor"](self.x_test[self.indices(label)])
        return self.cache[key]

    def comparison(self) -> dict:
        """Statistics and ranking of every layer's maps, DIGIT vs CONTRAST (cached).

        Returns
        -------
        dict {layer: {"stats_digit", "stats_contrast", "scores_digit", "scores_contrast",
        "effect", "ranking", "rows"}}
        """
        if "comparison" not in self.cache:
            from analysis import compare

            a, b = self.class_maps(self.digit), self.class_maps(self.contrast)
            result = {}
            for layer in MAP_LAYERS:
                stats_a, stats_b = compare.class_statistics(a[layer]), compare.class_statistics(b[layer])
                sa, sb = compare.spatial_means(a[layer]), compare.spatial_means(b[layer])
                result[layer] = {"stats_digit": stats_a, "stats_contrast": stats_b,
                                 "scores_digit": sa, "scores_contrast": sb,
                                 "effect": compare.effect_sizes(sa, sb),
                                 "ranking": compare.rank_maps(sa, sb),
                                 "rows": compare.ranking_table(sa, sb, stats_a, stats_b)}
            self.cache["comparison"] = result
        return self.cache["comparison"]


def _csv_value(v):
    return " ".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v


# Sections ------------------------------------------------------------------------------------

def confusion_section(ctx: Context) -> Section:
    """Confusion matrix, top confused pairs, misclassified images of DIGIT."""
    from analysis.plots import plot_misclassified
    from mnist_cnn.evaluate import plot_confusion, top_confusions

    ev, d = ctx.evaluation, ctx.digit
    cm = ev["confusion_matrix"]
    pairs = [{"true": t, "predicted": p, "count": n} for t, p, n in top_confusions(cm, k=10)]
    idx = ctx.indices(d)
    wrong = idx[ev["predicted"][idx] != d]
    confidence = ev["probabilities"][wrong, ev["predicted"][wrong]]
    order = np.argsort(-confidence, kind="stable")
    wrong, confidence = wrong[order], confidence[order]
    figures = [
        ctx.figure("confusion_matrix", plot_confusion(cm),
                   f"Confusion matrix of the {cm.sum()} test images: counts (left) and "
                   "row-normalised (right; the diagonal is each digit's recall). Rows: true digit, "
                   "columns: predicted.", confusion_matrix=cm),
        ctx.figure(f"misclassified_{d}",
                   plot_misclassified(ctx.x_test[wrong], ev["predicted"][wrong], confidence, d,
                                      titles=[f"#{i}" for i in wrong]),
                   f"The {len(wrong)} misclassified test images of {d}, most confident mistake "
                   "first, each with the predicted digit and the model's probability for it.",
                   test_index=wrong, predicted=ev["predicted"][wrong], confidence=confidence,
                   images=(ctx.x_test[wrong, ..., 0] * 255).round().astype(np.uint8)),
    ]
    row = cm[d]
    errors = {int(j): int(row[j]) for j in np.argsort(-row) if j != d and row[j] > 0}
    summary = {"test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
               "digit_recall": float(row[d] / max(row.sum(), 1)),
               "digit_misclassified": int(len(wrong)), "digit_predicted_as": errors,
               "top_confused_pairs": pairs}
    text = (f"Test accuracy {ev['accuracy']:.2%} (loss {ev['loss']:.4f}). Of the {row.sum()} test "
            f"images of {d}, {len(wrong)} are misclassified"
            + (": " + ", ".join(f"{n} as {j}" for j, n in errors.items()) if errors else "") + ".")
    table = ctx.table("top_confusions", "Most frequent confusions over the whole test set "
                      "(true digit -> predicted digit).", pairs)
    return Section("confusion", "Confusion report", text, figures, [table], summary)


def activation_section(ctx: Context) -> Section:
    """Every map of every chosen layer for one test image of DIGIT."""
    from analysis.plots import plot_activation_grid

    i = int(ctx.sample_indices(ctx.digit)[0])
    pos = int(np.flatnonzero(ctx.indices(ctx.digit) == i)[0])
    maps = ctx.class_maps(ctx.digit)
    figures = []
    for layer in ctx.layers:
        m = maps[layer][pos]
        figures.append(ctx.figure(
            f"activations_{layer}",
            plot_activation_grid(ctx.x_test[i], m, layer, ctx.cmap,
                                 title=f"test image #{i} (a {ctx.digit})"),
            f"All {m.shape[-1]} maps of {layer} ({m.shape[0]}x{m.shape[1]}) for test image #{i}, "
            f"a {ctx.digit}; one colour scale from 0 to the largest activation "
            f"({m.max():.3g}). Map {int(m.mean(axis=(0, 1)).argmax())} has the largest mean; "
            f"{int((m.max(axis=(0, 1)) <= 0).sum())} maps are all zero for this image.",
            image=ctx.x_test[i, ..., 0], maps=m, test_index=i))
    return Section("activations", f"Feature maps of one {ctx.digit}",
                   "What each conv and pooling layer produces for one image (the series' part IV).",
                   figures, summary={"test_index": i, "layers": list(ctx.layers)})


def samples_section(ctx: Context) -> Section:
    """The series' part V figure: several images of DIGIT and CONTRAST, layer by layer."""
    from analysis.plots import plot_class_samples

    picks = {}
    for label in (ctx.digit, ctx.contrast):
        chosen = ctx.sample_indices(label)
        picks[label] = (chosen, np.searchsorted(ctx.indices(label), chosen))
    figures = []
    for layer in ctx.layers:
        (ia, pa), (ib, pb) = picks[ctx.digit], picks[ctx.contrast]
        ma, mb = ctx.class_maps(ctx.digit)[layer][pa], ctx.class_maps(ctx.contrast)[layer][pb]
        figures.append(ctx.figure(
            f"samples_{layer}",
            plot_class_samples(ctx.x_test[ia], ma, ctx.x_test[ib], mb, layer, ctx.digit,
                               ctx.contrast, ctx.cmap,
                               titles=[f"#{i}" for i in np.r_[ia, ib]]),
            f"{layer}: {len(ia)} test images of {ctx.digit} (#{', #'.join(map(str, ia))}) and "
            f"{len(ib)} of {ctx.contrast} (#{', #'.join(map(str, ib))}) side by side, one colour "
            "scale; maps that light up in every row of one digit are what the class shares.",
            test_index_digit=ia, test_index_contrast=ib, maps_digit=ma, maps_contrast=mb))
    return Section("samples", f"Different {ctx.digit}s and {ctx.contrast}s, layer by layer",
                   "Which maps stay common within a class (the series' part V).", figures,
                   summary={"test_index_digit": [int(i) for i in picks[ctx.digit][0]],
                            "test_index_contrast": [int(i) for i in picks[ctx.contrast][0]]})


def kernels_section(ctx: Context) -> Section:
    """The 32 first-layer 3x3 kernels."""
    from analysis.plots import plot_kernels

    kernel, bias = (np.asarray(w) for w in ctx.model.get_layer("conv_1").get_weights())
    fig = ctx.figure("kernels_conv_1", plot_kernels(kernel),
                     "The 32 conv_1 kernels (3x3 weights on the input pixels), one symmetric "
                     f"colour scale (|w| up to {np.abs(kernel).max():.3g}); red weights respond "
                     "to ink, blue to its absence. Tile title: map index.",
                     kernel=kernel, bias=bias)
    return Section("kernels", "First-layer kernels", "", [fig],
                   summary={"max_abs_weight": float(np.abs(kernel).max())})


def comparison_section(ctx: Context) -> Section:
    """Per-map statistics of all layers, class-mean conv_3 maps, and the ranking of conv_3 maps."""
    from analysis.plots import plot_class_means, plot_ranking

    d, c = ctx.digit, ctx.contrast
    comp = ctx.comparison()
    arrays = {}
    for layer, r in comp.items():
        for name, stats in (("digit", r["stats_digit"]), ("contrast", r["stats_contrast"])):
            for key, value in stats.items():
                arrays[f"{layer}_{key}_{name}"] = value
        arrays[f"{layer}_auc"] = r["effect"]["auc"]
        arrays[f"{layer}_cohens_d"] = r["effect"]["cohens_d"]
        arrays[f"{layer}_ranking"] = r["ranking"]
    save_npz(ctx.out / "class_statistics.npz", **arrays)

    c3 = comp["conv_3"]
    top = c3["ranking"][:TOP_MAPS]
    n_a, n_b = len(c3["scores_digit"]), len(c3["scores_contrast"])
    figures = [
        ctx.figure("class_means_conv_3",
                   plot_class_means(c3["stats_digit"]["mean_map"], c3["stats_contrast"]["mean_map"],
                                    d, c, "conv_3", ctx.cmap, highlight=top[:8]),
                   f"Mean conv_3 maps over all {n_a} test images of {d} (top) and all {n_b} of "
                   f"{c} (middle), shared colour scale; bottom: their difference (red: stronger "
                   f"on {d}). The 8 best-separating maps are framed in red.",
                   mean_map_digit=c3["stats_digit"]["mean_map"],
                   mean_map_contrast=c3["stats_contrast"]["mean_map"], highlighted=top[:8]),
        ctx.figure("ranking_conv_3",
                   plot_ranking(c3["effect"]["auc"], c3["ranking"], d, c, "conv_3", TOP_MAPS),
                   f"ROC AUC of each conv_3 map's mean activation for telling {d} from {c}, maps "
                   "sorted by separation |2 AUC - 1|.", auc=c3["effect"]["auc"],
                   ranking=c3["ranking"], cohens_d=c3["effect"]["cohens_d"]),
    ]
    all_rows = [{"layer": layer, **row} for layer, r in comp.items() for row in r["rows"]]
    ctx.table("ranking_all_layers", "", all_rows)
    best = [{"layer": layer, **r["rows"][0],
             "maps_auc_above_0.9_or_below_0.1": int((r["effect"]["separation"] > 0.8).sum()),
             "maps": len(r["ranking"])} for layer, r in comp.items()]
    tables = [
        ctx.table("ranking_conv_3", f"The {TOP_MAPS} conv_3 maps that best separate {d} from {c} "
                  "(all 128 in ranking_conv_3.csv, every layer in ranking_all_layers.csv). "
                  "mean_*: mean activation; active_*: fraction of images where the map is active.",
                  c3["rows"], show=TOP_MAPS),
        ctx.table(None, "The best-separating map of each layer, and how many maps separate "
                  "strongly (AUC > 0.9 or < 0.1).", best),
    ]
    text = (f"Over all {n_a} test images of {d} and all {n_b} of {c}: for every map of every "
            "layer, the mean activation, the fraction of images where it is active (> 0 "
            "somewhere), and the mean map (class_statistics.npz). Effect size: AUC = probability "
            f"that a random {d} activates the map (spatial mean) more than a random {c} (ties "
            "count half; Mann-Whitney U / (n1 n2)); maps are ranked by |2 AUC - 1|, ties by "
            "|Cohen's d| (mean difference over pooled standard deviation). The ranking uses the "
            "same test images as the ablation below.")
    return Section("comparison", f"What separates {d} from {c}", text, figures, tables,
                   summary={"n_images": {str(d): n_a, str(c): n_b},
                            "top_maps": c3["rows"][:TOP_MAPS], "best_per_layer": best})


def probe_section(ctx: Context) -> Section:
    """Logistic-regression probe on conv_3, all features and top-k ranked maps."""
    from analysis.compare import probe_accuracy

    a, b = ctx.class_maps(ctx.digit)["conv_3"], ctx.class_maps(ctx.contrast)["conv_3"]
    p = probe_accuracy(a, b, top_k=ABLATION_KS, seed=ctx.seed)
    rows = [{"features": f"all conv_3 activations ({p['n_features']})",
             "cv_accuracy": p["all_features"]}]
    rows += [{"features": f"spatial means of the top {k} ranked maps", "cv_accuracy": acc}
             for k, acc in p["top_k"].items()]
    text = (f"A logistic-regression probe (scikit-learn, standardised features) tells {ctx.digit} "
            f"from {ctx.contrast} on conv_3 outputs with {p['all_features']:.2%} "
            f"{p['folds']}-fold cross-validated accuracy ({p['n_images']} images). With only the "
            "spatial means of the top-k maps (ranking recomputed on each training fold): "
            + ", ".join(f"k={k}: {v:.2%}" for k, v in p["top_k"].items()) + ".")
    table = ctx.table("probe", "Cross-validated accuracy of the probe.", rows)
    return Section("probe", "Probe: is the difference linearly readable?", text, [], [table], p)


def ablation_section(ctx: Context) -> Section:
    """Zero the top-k ranked conv_3 maps vs k random maps; accuracy on both classes."""
    import tensorflow as tf

    from analysis.compare import ablation
    from analysis.plots import plot_ablation
    from mnist_cnn.model import head_model

    d, c = ctx.digit, ctx.contrast
    head = tf.function(head_model(ctx.model, "conv_3"))
    result = ablation(lambda m: head(tf.constant(m)).numpy(),
                      ctx.class_maps(d)["conv_3"], ctx.class_maps(c)["conv_3"], d, c,
                      ctx.comparison()["conv_3"]["ranking"], ABLATION_KS, seed=ctx.seed)
    rows = [{"k": r["k"], f"acc {d}: ranked": r["ranked_accuracy_a"],
             f"acc {d}: random": r["random_accuracy_a_mean"],
             f"acc {c}: ranked": r["ranked_accuracy_b"],
             f"acc {c}: random": r["random_accuracy_b_mean"],
             f"p(true) {d}: ranked": r["ranked_probability_a"],
             f"p(true) {d}: random": r["random_probability_a_mean"],
             f"p(true) {c}: ranked": r["ranked_probability_b"],
             f"p(true) {c}: random": r["random_probability_b_mean"],
             "ranked maps": r["ranked_maps"]} for r in result["rows"]]
    fig = ctx.figure("ablation_conv_3", plot_ablation(result, d, c),
                     f"Accuracy (top) and mean probability of the true class (bottom) on the "
                     f"test images of {d} (left) and {c} (right) after setting the top-k ranked "
                     f"conv_3 maps to zero (red) or k random maps ({result['random_draws']} "
                     "draws, grey: mean and min-max).",
                     ranking=ctx.comparison()["conv_3"]["ranking"],
                     **{key: np.array([r[key] for r in result["rows"]])
                        for key in result["rows"][0] if key != "ranked_maps"})
    last = result["rows"][-1]
    text = (f"Zeroing maps after conv_3 and running the rest of the network (flatten, dense_1, "
            f"output). Without ablation: {result['baseline']['accuracy_a']:.2%} on {d}, "
            f"{result['baseline']['accuracy_b']:.2%} on {c}. With the top {last['k']} ranked maps "
            f"zeroed: {last['ranked_accuracy_a']:.2%} and {last['ranked_accuracy_b']:.2%}; with "
            f"{last['k']} random maps: {last['random_accuracy_a_mean']:.2%} and "
            f"{last['random_accuracy_b_mean']:.2%} on average.")
    # The CSV keeps every column (random min and max included); the page shows the main ones.
    ctx.table("ablation", "", result["rows"])
    table = ctx.table(None, f"Accuracy and mean true-class probability p(true) after zeroing "
                      f"k conv_3 maps (random: mean of {result['random_draws']} draws; "
                      "ablation.csv adds min and max).", rows)
    table.file = "ablation.csv"
    return Section("ablation", "Ablation: do the ranked maps matter?", text, [fig], [table], result)


def oip_section(ctx: Context) -> Section:
    """OIPs of the top-ranked conv_3 maps, class images and pattern carving (analysis/oip/)."""
    from analysis.oip.ascent import OIPConfig
    from analysis.oip.compute import CARVE_CONFIG, carve, class_images, compute_oips, oip_quality
    from analysis.oip.plots import plot_carving, plot_class_images, plot_oips

    d, c = ctx.digit, ctx.contrast
    auc = np.asarray(ctx.comparison()["conv_3"]["effect"]["auc"])
    for_digit = np.argsort(-auc, kind="stable")[:REPORT_MAPS]
    for_contrast = np.argsort(auc, kind="stable")[:REPORT_MAPS]
    maps = np.r_[for_digit, for_contrast]
    r = compute_oips(ctx.model, "conv_3", maps, OIPConfig(), ctx.seed, ctx.x_test, verbose=0)
    q = oip_quality(r)
    labels = [f"AUC {auc[m]:.2f}" for m in maps]
    figures = [ctx.figure(
        "oip_conv_3_top",
        plot_oips(r["images"], maps, r["activation"], "conv_3", r["data_max"], labels,
                  title=f"OIPs of the {REPORT_MAPS} conv_3 maps that most prefer {d} over {c} "
                        f"(top row) and {c} over {d} (bottom row)"),
        f"Input patterns (OIPs) that maximise the mean activation of the conv_3 maps that best "
        f"prefer {d} over {c} (top row, highest AUC) and {c} over {d} (bottom row, lowest AUC); "
        "200 normalised gradient steps from multi-scale noise. Tile label: map index, the OIP's "
        "activation, the map's AUC; red: the OIP does not exceed the map's largest activation "
        "on a test image.",
        images=r["images"], maps=maps, activation=r["activation"], data_max=r["data_max"],
        auc=auc[maps])]
    ci = class_images(ctx.model, [d, c], seed=ctx.seed)
    figures.append(ctx.figure(
        "class_images", plot_class_images(ci["images"], ci["digits"], ci["logit"],
                                          ci["probability"]),
        f"Class images: inputs that maximise the logit of {d} and of {c} (200 steps, small "
        "total-variation penalty), with the logit and the softmax probability they reach.",
        images=ci["images"], digits=ci["digits"], logit=ci["logit"],
        probability=ci["probability"]))
    source = int(ctx.sample_indices(d)[0])
    carved = carve(ctx.model, ctx.x_test[source], np.r_[for_digit[:2], for_contrast[:2]])
    figures.append(ctx.figure(
        "pattern_carving", plot_carving(carved),
        f"Pattern carving: test image #{source} (a {d}) after {CARVE_CONFIG.steps} small gradient "
        f"steps that raise one conv_3 map each: the two maps most typical of {d}, then the two "
        f"most typical of {c}. Right: what changed (red: ink added, blue: removed).",
        before=carved["before"], after=carved["after"], maps=carved["maps"],
        activation_before=carved["activation_before"],
        activation_after=carved["activation_after"], predicted_after=carved["predicted_after"]))
    text = (f"OIPs (gradient-ascent input patterns) of the conv_3 maps that separate {d} from {c} "
            f"best: {q['above_data_max']} of {q['active_on_data']} maps active on the test images "
            f"reach more than on any test image; {q['dead_on_data']} are dead on them. "
            f"The class image of {d} reaches logit {ci['logit'][0]:.1f} (p = "
            f"{ci['probability'][0]:.3f}). Carving test image #{source} towards map "
            f"{int(for_contrast[0])} (typical of {c}) leads to the prediction "
            f"{int(carved['predicted_after'][2])}.")
    summary = {"maps_for_digit": for_digit.tolist(), "maps_for_contrast": for_contrast.tolist(),
               "activation": r["activation"].round(4).tolist(),
               "data_max": r["data_max"].round(4).tolist(), **q,
               "class_image_logit": ci["logit"].round(3).tolist(),
               "class_image_probability": ci["probability"].round(4).tolist(),
               "carving_source_index": source,
               "carving_predicted_after": carved["predicted_after"].tolist()}
    return Section("oip", "OIPs: what the separating maps look for", text, figures, [], summary)


# The report, in page order. Append a section function here to add it (see the module docstring).
SECTIONS = [confusion_section, activation_section, samples_section, kernels_section,
            comparison_section, probe_section, ablation_section, oip_section]


# Building the report -------------------------------------------------------------------------

def build_report(model, model_path, test_data, digit: int, out, contrast=None, samples=3,
                 cmap="viridis", layers=MAP_LAYERS, sections=None, seed=0) -> dict:
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
    sections : list of section functions (default SECTIONS).
    seed : int, seed of the random ablations and the probe's folds.

    Returns
    -------
    dict, the summary (also written to out/summary.json).
    """
    from analysis.compare import most_confused_with
    from mnist_cnn.data import to_input
    from mnist_cnn.evaluate import evaluate

    started = time.perf_counter()
    if not 0 <= int(digit) <= 9:
        raise UserError(f"digit must be 0-9, got {digit}")
    if contrast is not None and (not 0 <= int(contrast) <= 9 or contrast == digit):
        raise UserError(f"contrast must be a digit 0-9 other than {digit}, got {contrast}")
    unknown = [name for name in layers if name not in MAP_LAYERS]
    if unknown:
        raise UserError(f"unknown layer {unknown[0]!r}; choose from {', '.join(MAP_LAYERS)}")
    x_test, y_test = test_data
    x, y = to_input(np.asarray(x_test)), np.asarray(y_test).astype(int)
    if not (y == digit).any():
        raise UserError(f"the test data has no images of {digit}; check --data")
    evaluation = evaluate(model, x, y)
    source = "given"
    if contrast is None:
        contrast, source = most_confused_with(evaluation["confusion_matrix"], digit), "most confused"
    if not (y == contrast).any():
        raise UserError(f"the test data has no images of {contrast}; check --data or --contrast")
    ctx = Context(model=model, model_path=Path(model_path), out=Path(out), x_test=x, y_test=y,
                  digit=int(digit), contrast=int(contrast), contrast_source=source,
                  evaluation=evaluation, samples=samples, cmap=cmap, layers=tuple(layers),
                  seed=seed)
    done, seconds = [], {}
    for section in SECTIONS if sections is None else sections:
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
        "digit": ctx.digit, "contrast": ctx.contrast, "contrast_source": ctx.contrast_source,
        "confusions_digit_contrast": {f"{ctx.digit}->{ctx.contrast}": int(cm[ctx.digit, ctx.contrast]),
                                      f"{ctx.contrast}->{ctx.digit}": int(cm[ctx.contrast, ctx.digit])},
        "effect_size": "ROC AUC of the map's per-image spatial mean, digit (positive) vs "
                       "contrast; ranked by |2 AUC - 1|, ties by |Cohen's d|",
        "top_maps": by_key.get("comparison", {}).get("top_maps"),
        "probe": by_key.get("probe"),
        "ablation": by_key.get("ablation"),
        "sections": by_key, "section_seconds": seconds,
    }


_STYLE = """body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#444}
table{border-collapse:collapse;margin:1em 0;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f2f2f2}caption{caption-side:top;text-align:left;font-size:.9em;
padding-bottom:4px}code{background:#f4f4f4;padding:0 3px}"""


def _html_table(rows, caption="", show=None, link=None) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(_csv_value(v)))}</td>"
                                    for v in r.values()) + "</tr>" for r in rows[:show])
    link_html = f' (<a href="{html.escape(link)}">{html.escape(link)}</a>)' if link else ""
    return (f"<table><caption>{html.escape(caption)}{link_html}</caption><tr>{head}</tr>"
            f"{body}</table>")


def render_html(ctx: Context, sections: list, summary: dict) -> str:
    """The report page: key numbers, then each section's text, tables and figures."""
    d, c = ctx.digit, ctx.contrast
    key = [{"": "model", "value": f"{summary['model']['file']} (sha256 "
            f"{summary['model']['sha256'][:16]}...)"},
           {"": "test accuracy", "value": f"{summary['test_accuracy']:.4%}"},
           {"": "digit / contrast", "value": f"{d} / {c} ({ctx.contrast_source})"},
           {"": f"confusions {d}->{c}, {c}->{d}",
            "value": ", ".join(map(str, summary["confusions_digit_contrast"].values()))}]
    if summary.get("probe"):
        key.append({"": "probe accuracy (conv_3, cross-validated)",
                    "value": f"{summary['probe']['all_features']:.2%}"})
    if summary.get("ablation"):
        last = summary["ablation"]["rows"][-1]
        key.append({"": f"accuracy on {d} / {c}, top {last['k']} maps zeroed",
                    "value": f"{last['ranked_accuracy_a']:.2%} / {last['ranked_accuracy_b']:.2%} "
                             f"(random {last['random_accuracy_a_mean']:.2%} / "
                             f"{last['random_accuracy_b_mean']:.2%})"})
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mnist_cnn: digit {d}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>How the CNN sees a {d} (contrast: {c})</h1>",
             _html_table(key, "Key numbers (all in summary.json)"),
             "<p>" + " · ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
             + "</p>"]
    for s in sections:
        parts.append(f'<h2 id="{s.key}">{html.escape(s.title)}</h2>')
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        parts += [_html_table(t.rows, t.caption, t.show, t.file) for t in s.tables]
        for f in s.figures:
            parts.append(f'<figure><a href="{f.file}"><img src="{f.file}" alt="{html.escape(f.file)}">'
                         f"</a><figcaption>{html.escape(f.caption)} Numbers: "
                         f'<a href="{f.data}">{f.data}</a>.</figcaption></figure>')
    parts.append(f"<p><small>Written by <code>python -m mnist_cnn analyze --digit {d}</code>; "
                 "files listed in <a href='summary.json'>summary.json</a>.</small></p>"
                 "</body></html>\n")
    return "\n".join(parts)


def run_analyze(args) -> int:
    """CLI entry: load the model and data, build the report atomically, print key numbers."""
    from mnist_cnn.data import load_mnist
    from mnist_cnn.model import load_trained

    out = Path(args.out or f"reports/digit-{args.digit}")
    model = load_trained(args.model)  # UserError for a missing/corrupt/foreign model
    _, test = load_mnist(args.data or None)
    with atomic_dir(out) as tmp:
        summary = build_report(model, args.model, test, args.digit, tmp, contrast=args.contrast,
                               samples=args.samples, cmap=args.cmap, layers=args.layers)
    print(f"digit {summary['digit']} vs {summary['contrast']} ({summary['contrast_source']}); "
          f"test accuracy {summary['test_accuracy']:.4%}")
    if summary.get("probe"):
        print(f"probe on conv_3: {summary['probe']['all_features']:.2%} cross-validated accuracy")
    if summary.get("ablation"):
        last = summary["ablation"]["rows"][-1]
        print(f"top {last['k']} conv_3 maps zeroed: accuracy {last['ranked_accuracy_a']:.2%} on "
              f"{summary['digit']}, {last['ranked_accuracy_b']:.2%} on {summary['contrast']} "
              f"(random maps: {last['random_accuracy_a_mean']:.2%}, "
              f"{last['random_accuracy_b_mean']:.2%})")
    print(f"wrote {out}/index.html ({len(summary['files'])} files) in {summary['seconds']:.1f} s")
    return 0


def bench_analyze(args) -> dict:
    """`make bench` section: feature-map extraction speed and the whole analyze command's time.

    Returns
    -------
    dict with extract_10k_seconds (best of 3 after a warm-up; all 10,000 test images through
    every conv/pool layer and dense_1), extract_10k_first_seconds, and analyze_wall_seconds
    (`python -m mnist_cnn analyze --digit 4`, a fresh process, into a temporary folder).
    """
    import os
    import subprocess
    import sys
    import tempfile

    from analysis.feature_maps import FEATURE_LAYERS, FeatureExtractor
    from mnist_cnn.bench import ensure_model
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.model import load_trained

    path = ensure_model()
    model = load_trained(path)
    _, (x_test, _) = load_mnist()
    x = to_input(x_test)
    extract = FeatureExtractor(model, FEATURE_LAYERS)
    times = []
    for _ in range(4):
        t = time.perf_counter()
        extract(x)
        times.append(time.perf_counter() - t)
    print(f"[bench] feature maps of {len(x)} images through {', '.join(FEATURE_LAYERS)}: "
          f"{min(times[1:]):.2f} s (first call {times[0]:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnist_cnn", "analyze", "--digit", "4", "--model",
                        str(path), "--out", str(Path(tmp) / "digit-4")], check=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        inner = __import__("json").loads((Path(tmp) / "digit-4" / "summary.json").read_text())
    print(f"[bench] python -m mnist_cnn analyze --digit 4: {wall:.1f} s wall "
          f"(report building {inner['seconds']:.1f} s)")
    return {"extract_10k_seconds": round(min(times[1:]), 3),
            "extract_10k_first_seconds": round(times[0], 3),
            "analyze_wall_seconds": round(wall, 1), "analyze_report_seconds": inner["seconds"],
            "analyze_section_seconds": inner["section_seconds"]}
