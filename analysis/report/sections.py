"""The report's sections, in page order (`SECTIONS`); each is a function of the `Context`.

How to add a section:
    1. write `def my_section(ctx: Context) -> Section` (import heavy modules inside it);
       save figures with `ctx.figure(name, fig, caption, **arrays)` and tables with
       `ctx.table(name, caption, rows)`; use `ctx.model`, `ctx.digit`, `ctx.contrast`,
       `ctx.cmap`, `ctx.class_maps(label)`, `ctx.comparison()` (ranking of every layer's maps),
       `ctx.net` and `ctx.last_conv` (the layer the ranking, probe and ablation study);
    2. append it to SECTIONS below. Its `summary` dict lands in summary.json under
       "sections" -> its key, and its figures and tables appear in index.html.

The computations live in `analysis.feature_maps`, `analysis.compare` and `analysis.oip`, the
figures in `analysis.plots` and `analysis.oip.plots`; a section only picks what to show and
writes the captions.
"""

from __future__ import annotations

import numpy as np

from analysis.report.attribution import attribution_section
from analysis.report.concepts import concepts_section
from analysis.report.context import Context, Section
from mnist_cnn.fileio import save_npz

ABLATION_KS = (1, 2, 4, 8, 16, 32)
TOP_MAPS = 16  # rows of the ranking table in the report and in summary.json
REPORT_MAPS = 8  # OIPs per side in the digit report


def _ks(maps: int) -> tuple:
    """The ablation's and probe's k values that a layer of `maps` maps has (all of ABLATION_KS
    for the series' conv_3, 128 maps)."""
    return tuple(k for k in ABLATION_KS if k <= maps)


def confusion_section(ctx: Context) -> Section:
    """Confusion matrix, top confused pairs, misclassified images of DIGIT."""
    from analysis.plots import plot_misclassified
    from mnist_cnn.evaluate import plot_confusion, top_confusions

    ev, d, name, noun = ctx.evaluation, ctx.digit, ctx.name, ctx.noun
    cm = ev["confusion_matrix"]
    pairs = [{"true": t, "predicted": p, "count": n} for t, p, n in top_confusions(cm, k=10)]
    label = ctx.dataset.class_label  # "6" (MNIST), "6 (Shirt)"
    shown_pairs = [{"true": label(r["true"]), "predicted": label(r["predicted"]),
                    "count": r["count"]} for r in pairs]
    idx = ctx.indices(d)
    wrong = idx[ev["predicted"][idx] != d]
    confidence = ev["probabilities"][wrong, ev["predicted"][wrong]]
    order = np.argsort(-confidence, kind="stable")
    wrong, confidence = wrong[order], confidence[order]
    figures = [
        ctx.figure("confusion_matrix", plot_confusion(cm, ctx.dataset.name),
                   f"Confusion matrix of the {cm.sum()} test images: counts (left) and "
                   f"row-normalised (right; the diagonal is each {noun}'s recall). Rows: true "
                   f"{noun}, columns: predicted.", confusion_matrix=cm),
        ctx.figure(f"misclassified_{d}",
                   plot_misclassified(ctx.x_test[wrong], ev["predicted"][wrong], confidence,
                                      name(d), titles=[f"#{i}" for i in wrong],
                                      class_names=ctx.dataset.class_names, noun=noun),
                   f"The {len(wrong)} misclassified test images of {name(d)}, most confident "
                   f"mistake first, each with the predicted {noun} and the model's probability "
                   "for it.",
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
            f"images of {name(d)}, {len(wrong)} are misclassified"
            + (": " + ", ".join(f"{n} as {name(j)}" for j, n in errors.items()) if errors else "")
            + ".")
    table = ctx.table("top_confusions", "Most frequent confusions over the whole test set "
                      f"(true {noun} -> predicted {noun}).", shown_pairs)
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
                                 title=f"test image #{i} ({ctx.a(ctx.digit)})"),
            f"All {m.shape[-1]} maps of {layer} ({m.shape[0]}x{m.shape[1]}) for test image #{i}, "
            f"{ctx.a(ctx.digit)}; one colour scale from 0 to the largest activation "
            f"({m.max():.3g}). Map {int(m.mean(axis=(0, 1)).argmax())} has the largest mean; "
            f"{int((m.max(axis=(0, 1)) <= 0).sum())} maps are all zero for this image.",
            image=ctx.x_test[i, ..., 0], maps=m, test_index=i))
    return Section("activations", f"Feature maps of one {ctx.name(ctx.digit)}",
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
            plot_class_samples(ctx.x_test[ia], ma, ctx.x_test[ib], mb, layer,
                               ctx.name(ctx.digit), ctx.name(ctx.contrast), ctx.cmap,
                               titles=[f"#{i}" for i in np.r_[ia, ib]]),
            f"{layer}: {len(ia)} test images of {ctx.name(ctx.digit)} "
            f"(#{', #'.join(map(str, ia))}) and {len(ib)} of {ctx.name(ctx.contrast)} "
            f"(#{', #'.join(map(str, ib))}) side by side, one colour scale; maps that light up in "
            f"every row of one {ctx.noun} are what the class shares.",
            test_index_digit=ia, test_index_contrast=ib, maps_digit=ma, maps_contrast=mb))
    return Section("samples", f"Different {ctx.plural(ctx.digit)} and {ctx.plural(ctx.contrast)}, "
                   "layer by layer",
                   "Which maps stay common within a class (the series' part V).", figures,
                   summary={"test_index_digit": [int(i) for i in picks[ctx.digit][0]],
                            "test_index_contrast": [int(i) for i in picks[ctx.contrast][0]]})


def kernels_section(ctx: Context) -> Section:
    """The first conv layer's kernels (the series' network: 32 of 3x3)."""
    from analysis.plots import plot_kernels

    first = ctx.net.conv_layers[0]
    kernel, bias = (np.asarray(w) for w in ctx.model.get_layer(first.name).get_weights())
    size = "x".join(map(str, first.kernel_size))
    fig = ctx.figure(f"kernels_{first.name}", plot_kernels(kernel, first.name),
                     f"The {first.channels} {first.name} kernels ({size} weights on the input "
                     "pixels), one symmetric "
                     f"colour scale (|w| up to {np.abs(kernel).max():.3g}); red weights respond "
                     "to ink, blue to its absence. Tile title: map index.",
                     kernel=kernel, bias=bias)
    return Section("kernels", "First-layer kernels", "", [fig],
                   summary={"max_abs_weight": float(np.abs(kernel).max())})


def comparison_section(ctx: Context) -> Section:
    """Per-map statistics of all layers, class-mean maps and ranking of the last conv layer's maps."""
    from analysis.plots import plot_class_means, plot_ranking

    d, c = ctx.name(ctx.digit), ctx.name(ctx.contrast)
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

    L = ctx.last_conv
    c3 = comp[L]
    top = c3["ranking"][:TOP_MAPS]
    n_a, n_b = len(c3["scores_digit"]), len(c3["scores_contrast"])
    figures = [
        ctx.figure(f"class_means_{L}",
                   plot_class_means(c3["stats_digit"]["mean_map"], c3["stats_contrast"]["mean_map"],
                                    d, c, L, ctx.cmap, highlight=top[:8]),
                   f"Mean {L} maps over all {n_a} test images of {d} (top) and all {n_b} of "
                   f"{c} (middle), shared colour scale; bottom: their difference (red: stronger "
                   f"on {d}). The 8 best-separating maps are framed in red.",
                   mean_map_digit=c3["stats_digit"]["mean_map"],
                   mean_map_contrast=c3["stats_contrast"]["mean_map"], highlighted=top[:8]),
        ctx.figure(f"ranking_{L}",
                   plot_ranking(c3["effect"]["auc"], c3["ranking"], d, c, L, TOP_MAPS),
                   f"ROC AUC of each {L} map's mean activation for telling {d} from {c}, maps "
                   "sorted by separation |2 AUC - 1|.", auc=c3["effect"]["auc"],
                   ranking=c3["ranking"], cohens_d=c3["effect"]["cohens_d"]),
    ]
    def named(row):  # column names: mean_digit, active_digit -> mean_class, ... where not digits
        return {k.replace("digit", ctx.noun): v for k, v in row.items()}

    all_rows = [{"layer": layer, **named(row)} for layer, r in comp.items() for row in r["rows"]]
    ctx.table("ranking_all_layers", "", all_rows)
    best = [{"layer": layer, **named(r["rows"][0]),
             "maps_auc_above_0.9_or_below_0.1": int((r["effect"]["separation"] > 0.8).sum()),
             "maps": len(r["ranking"])} for layer, r in comp.items()]
    tables = [
        ctx.table(f"ranking_{L}", f"The {TOP_MAPS} {L} maps that best separate {d} from {c} "
                  f"(all {len(c3['ranking'])} in ranking_{L}.csv, every layer in ranking_all_layers.csv). "
                  "mean_*: mean activation; active_*: fraction of images where the map is active.",
                  [named(row) for row in c3["rows"]], show=TOP_MAPS),
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
                   summary={"n_images": {str(ctx.digit): n_a, str(ctx.contrast): n_b},
                            "top_maps": c3["rows"][:TOP_MAPS], "best_per_layer": best})


def probe_section(ctx: Context) -> Section:
    """Logistic-regression probe on the last conv layer, all features and top-k ranked maps."""
    from analysis.compare import probe_accuracy

    L = ctx.last_conv
    a, b = ctx.class_maps(ctx.digit)[L], ctx.class_maps(ctx.contrast)[L]
    p = probe_accuracy(a, b, top_k=_ks(a.shape[-1]), seed=ctx.seed)
    rows = [{"features": f"all {L} activations ({p['n_features']})",
             "cv_accuracy": p["all_features"]}]
    rows += [{"features": f"spatial means of the top {k} ranked maps", "cv_accuracy": acc}
             for k, acc in p["top_k"].items()]
    text = (f"A logistic-regression probe (scikit-learn, standardised features) tells "
            f"{ctx.name(ctx.digit)} from {ctx.name(ctx.contrast)} on {L} outputs with {p['all_features']:.2%} "
            f"{p['folds']}-fold cross-validated accuracy ({p['n_images']} images). With only the "
            "spatial means of the top-k maps (ranking recomputed on each training fold): "
            + ", ".join(f"k={k}: {v:.2%}" for k, v in p["top_k"].items()) + ".")
    table = ctx.table("probe", "Cross-validated accuracy of the probe.", rows)
    return Section("probe", "Probe: is the difference linearly readable?", text, [], [table], p)


def ablation_section(ctx: Context) -> Section:
    """Zero the top-k ranked maps of the last conv layer vs k random maps; accuracy on both classes."""
    import tensorflow as tf

    from analysis.compare import ablation
    from analysis.plots import plot_ablation
    from mnist_cnn.model import head_model

    d, c = ctx.name(ctx.digit), ctx.name(ctx.contrast)
    L = ctx.last_conv
    after = ", ".join(i.name for i in ctx.net.layers[ctx.net.layer(L).index + 1:])
    head = tf.function(head_model(ctx.model, L))
    result = ablation(lambda m: head(tf.constant(m)).numpy(),
                      ctx.class_maps(ctx.digit)[L], ctx.class_maps(ctx.contrast)[L],
                      ctx.digit, ctx.contrast,
                      ctx.comparison()[L]["ranking"], _ks(ctx.net.layer(L).channels),
                      seed=ctx.seed)
    rows = [{"k": r["k"], f"acc {d}: ranked": r["ranked_accuracy_a"],
             f"acc {d}: random": r["random_accuracy_a_mean"],
             f"acc {c}: ranked": r["ranked_accuracy_b"],
             f"acc {c}: random": r["random_accuracy_b_mean"],
             f"p(true) {d}: ranked": r["ranked_probability_a"],
             f"p(true) {d}: random": r["random_probability_a_mean"],
             f"p(true) {c}: ranked": r["ranked_probability_b"],
             f"p(true) {c}: random": r["random_probability_b_mean"],
             "ranked maps": r["ranked_maps"]} for r in result["rows"]]
    fig = ctx.figure(f"ablation_{L}", plot_ablation(result, d, c),
                     f"Accuracy (top) and mean probability of the true class (bottom) on the "
                     f"test images of {d} (left) and {c} (right) after setting the top-k ranked "
                     f"{L} maps to zero (red) or k random maps ({result['random_draws']} "
                     "draws, grey: mean and min-max).",
                     ranking=ctx.comparison()[L]["ranking"],
                     **{key: np.array([r[key] for r in result["rows"]])
                        for key in result["rows"][0] if key != "ranked_maps"})
    last = result["rows"][-1]
    text = (f"Zeroing maps after {L} and running the rest of the network ({after}). "
            f"Without ablation: {result['baseline']['accuracy_a']:.2%} on {d}, "
            f"{result['baseline']['accuracy_b']:.2%} on {c}. With the top {last['k']} ranked maps "
            f"zeroed: {last['ranked_accuracy_a']:.2%} and {last['ranked_accuracy_b']:.2%}; with "
            f"{last['k']} random maps: {last['random_accuracy_a_mean']:.2%} and "
            f"{last['random_accuracy_b_mean']:.2%} on average.")
    # The CSV keeps every column (random min and max included); the page shows the main ones.
    ctx.table("ablation", "", result["rows"])
    table = ctx.table(None, f"Accuracy and mean true-class probability p(true) after zeroing "
                      f"k {L} maps (random: mean of {result['random_draws']} draws; "
                      "ablation.csv adds min and max).", rows)
    table.file = "ablation.csv"
    return Section("ablation", "Ablation: do the ranked maps matter?", text, [fig], [table], result)


def oip_section(ctx: Context) -> Section:
    """OIPs of the top-ranked last-conv maps, class images and pattern carving (analysis/oip/)."""
    from analysis.oip.ascent import OIPConfig
    from analysis.oip.compute import CARVE_CONFIG, carve, class_images, compute_oips, oip_quality
    from analysis.oip.plots import plot_carving, plot_class_images, plot_oips

    d, c = ctx.name(ctx.digit), ctx.name(ctx.contrast)
    L = ctx.last_conv
    auc = np.asarray(ctx.comparison()[L]["effect"]["auc"])
    for_digit = np.argsort(-auc, kind="stable")[:REPORT_MAPS]
    for_contrast = np.argsort(auc, kind="stable")[:REPORT_MAPS]
    maps = np.r_[for_digit, for_contrast]
    r = compute_oips(ctx.model, L, maps, OIPConfig(), ctx.seed, ctx.x_test, verbose=0)
    q = oip_quality(r)
    labels = [f"AUC {auc[m]:.2f}" for m in maps]
    figures = [ctx.figure(
        f"oip_{L}_top",
        plot_oips(r["images"], maps, r["activation"], L, r["data_max"], labels, dead=r["dead"],
                  title=f"OIPs of the {REPORT_MAPS} {L} maps that most prefer {d} over {c} "
                        f"(top row) and {c} over {d} (bottom row)"),
        f"Input patterns (OIPs) that maximise the mean activation of the {L} maps that best "
        f"prefer {d} over {c} (top row, highest AUC) and {c} over {d} (bottom row, lowest AUC); "
        "200 normalised gradient steps from multi-scale noise. Tile label: map index, the OIP's "
        "activation, the map's AUC; red: the OIP does not exceed the map's largest activation "
        "on a test image.",
        images=r["images"], maps=maps, activation=r["activation"], data_max=r["data_max"],
        auc=auc[maps])]
    ci = class_images(ctx.model, [ctx.digit, ctx.contrast], seed=ctx.seed)
    figures.append(ctx.figure(
        "class_images", plot_class_images(ci["images"], ci["digits"], ci["logit"],
                                          ci["probability"], names=[d, c]),
        f"Class images: inputs that maximise the logit of {d} and of {c} (200 steps, small "
        "total-variation penalty), with the logit and the softmax probability they reach.",
        images=ci["images"], digits=ci["digits"], logit=ci["logit"],
        probability=ci["probability"]))
    source = int(ctx.sample_indices(ctx.digit)[0])
    carved = carve(ctx.model, ctx.x_test[source], np.r_[for_digit[:2], for_contrast[:2]], L)
    figures.append(ctx.figure(
        "pattern_carving", plot_carving(carved),
        f"Pattern carving: test image #{source} ({ctx.a(ctx.digit)}) after {CARVE_CONFIG.steps} small gradient "
        f"steps that raise one {L} map each: the two maps most typical of {d}, then the two "
        f"most typical of {c}. Right: what changed (red: ink added, blue: removed).",
        before=carved["before"], after=carved["after"], maps=carved["maps"],
        activation_before=carved["activation_before"],
        activation_after=carved["activation_after"], predicted_after=carved["predicted_after"]))
    text = (f"OIPs (gradient-ascent input patterns) of the {L} maps that separate {d} from {c} "
            f"best: {q['above_data_max']} of {q['active_on_data']} maps active on the test images "
            f"reach more than on any test image; {q['dead_on_data']} are dead on them. "
            f"The class image of {d} reaches logit {ci['logit'][0]:.1f} (p = "
            f"{ci['probability'][0]:.3f}). Carving test image #{source} towards map "
            f"{int(for_contrast[0])} (typical of {c}) leads to the prediction "
            f"{ctx.name(carved['predicted_after'][2])}.")
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
            comparison_section, probe_section, ablation_section, oip_section, attribution_section,
            concepts_section]
