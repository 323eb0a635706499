"""The `make analyze` section "what makes a 4 a 4 and not a 9" (issue #20, item 4).

The attribution of logit(DIGIT) - logit(CONTRAST), averaged over the test images of DIGIT, for
every method, with each method's faithfulness numbers on those images (deletion/insertion
against the random and Sobel orders, the randomisation check); and for the misclassified
images of DIGIT, which pixels pushed each one to the class it was given (integrated gradients
and occlusion of logit(predicted) - logit(DIGIT)).
"""

from __future__ import annotations

import numpy as np

from analysis.report.context import Context, Section

# Sizes keep the section to a few seconds of the report (every map of every method, then
# 2 x STEPS + 2 forward passes per image and map, and every map again per layer for RANDOMISE).
IMAGES = 64         # test images of DIGIT the mean maps and the deletion curves use (the first ones)
STEPS = 10          # slices of the deletion and insertion curves
RANDOMISE = 8       # of which the randomisation check re-computes every map for
MISTAKES = 12       # misclassified images shown


def _plot_means(means: dict, titles: dict, digit: str, contrast: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(means), figsize=(1.6 * len(means), 2.0))
    for ax, (name, m) in zip(np.atleast_1d(axes), means.items()):
        top = float(np.abs(m).max()) or 1.0
        ax.imshow(m, cmap="RdBu_r", vmin=-top, vmax=top)
        ax.set_title(titles[name], fontsize=7)
        ax.axis("off")
    fig.suptitle(f"mean attribution of logit({digit}) - logit({contrast}); red: towards {digit}",
                 fontsize=9)
    return fig


def _plot_mistakes(images, maps: dict, names):
    import matplotlib.pyplot as plt

    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, len(images), figsize=(1.1 * len(images), 1.2 * rows),
                             squeeze=False)
    for j, image in enumerate(images):
        axes[0, j].imshow(image, cmap="gray_r", vmin=0, vmax=1)
        axes[0, j].set_title(f"as {names[j]}", fontsize=7)
        for i, (name, m) in enumerate(maps.items(), start=1):
            top = float(np.abs(m[j]).max()) or 1.0
            axes[i, j].imshow(m[j], cmap="RdBu_r", vmin=-top, vmax=top)
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def attribution_section(ctx: Context) -> Section:
    """What makes a DIGIT a DIGIT and not a CONTRAST, per attribution method, with numbers."""
    from analysis.attribution.verdicts import best_against_random, measure
    from analysis.attribution.methods import Attributor, target_weights, title

    d, c, name = ctx.digit, ctx.contrast, ctx.name
    a = Attributor(ctx.model, seed=ctx.seed)
    idx = ctx.indices(d)[:IMAGES]
    x = ctx.x_test[idx]
    w = target_weights(np.full(len(idx), d), np.full(len(idx), c), a.num_classes)
    result = measure(a, x, w, steps=STEPS, randomise=RANDOMISE, seed=ctx.seed)
    means = {m: v.mean(axis=0) for m, v in result["maps"].items()}
    titles = {m: title(m) for m in means}
    figures = [ctx.figure(
        f"attribution_{d}_vs_{c}", _plot_means(means, titles, name(d), name(c)),
        f"The attribution of logit({name(d)}) - logit({name(c)}) averaged over the first "
        f"{len(idx)} test images of {name(d)}, per method (each on its own symmetric scale; red "
        f"pushes towards {name(d)}, blue towards {name(c)}; saliency is |gradient|, a size without "
        "a direction). How far each can be trusted: the table below.", **{m.replace(":", "_"): v for m, v in means.items()},
        test_index=idx)]

    wrong = ctx.indices(d)[ctx.evaluation["predicted"][ctx.indices(d)] != d][:MISTAKES]
    mistakes = {}
    if len(wrong):
        predicted = ctx.evaluation["predicted"][wrong]
        wm = target_weights(predicted, np.full(len(wrong), d), a.num_classes)
        maps, _ = a.all_maps(ctx.x_test[wrong], wm, ["integrated_gradients", "occlusion"],
                             with_check=False)
        figures.append(ctx.figure(
            f"attribution_mistakes_{d}",
            _plot_mistakes(ctx.x_test[wrong, ..., 0], {title(k): v for k, v in maps.items()},
                           [name(int(p)) for p in predicted]),
            f"The misclassified test images of {name(d)} (up to {MISTAKES}) and the pixels that "
            f"pushed each to the class it was given: integrated gradients and occlusion of "
            f"logit(given) - logit({name(d)}), red towards the wrong class.",
            test_index=wrong, predicted=predicted,
            **{k: v for k, v in maps.items()}))
        mistakes = {"shown": int(len(wrong)), "test_index": wrong.tolist(),
                    "predicted": predicted.tolist()}
    rows = [{"method": r["title"], "deletion_auc": round(r["deletion_auc"], 4),
             "insertion_auc": round(r["insertion_auc"], 4),
             "beats_random_deletion": round(r["beats_random_deletion"], 3),
             "beats_sobel_deletion": round(r["beats_sobel_deletion"], 3),
             "beats_random": r["beats_random"], "beats_edges": r["beats_sobel"],
             "randomised_rank_correlation_ink": round(r["randomised_correlation"], 3),
             "passes_randomisation": r["passes_randomisation"]} for r in result["rows"]]
    s = result["deletion"]["summary"]
    best = best_against_random(result["rows"])
    trusted = [r["method"] for r in rows if r["beats_random"] and r["beats_edges"]
               and r["passes_randomisation"]]
    comp = result["completeness"]
    text = (f"Probability of {name(d)} between the two (sigmoid of the logit difference) as "
            f"pixels are deleted or revealed in each map's order, on {len(idx)} test images of "
            f"{name(d)}: the random order scores deletion {s['random']['deletion_auc']:.3f} / "
            f"insertion {s['random']['insertion_auc']:.3f}, the Sobel edge map "
            f"{s['sobel']['deletion_auc']:.3f} / {s['sobel']['insertion_auc']:.3f}. "
            f"{title(best['method'])} beats random deletion on {best['fraction']:.0%} of them. "
            f"Beat both controls and pass the randomisation check (rank correlation on the ink "
            f"below {result['randomisation']['threshold']} after re-initialising every layer, "
            f"{RANDOMISE} images): {', '.join(trusted) or 'none'}. Integrated gradients sums to "
            f"the logit difference within 1% on {comp['within_1_percent']:.0%} of the images.")
    table = ctx.table(f"attribution_{d}_vs_{c}", "Faithfulness of each method's map of "
                      f"logit({name(d)}) - logit({name(c)}) (docs/predict.md: how to read it).", rows)
    summary = {"images": int(len(idx)), "rows": rows, "best_against_random_deletion": best,
               "trusted": trusted, "completeness_within_1_percent": comp["within_1_percent"],
               "controls": {k: s[k] for k in ("random", "sobel")}, "mistakes": mistakes}
    return Section("attribution", f"What makes {ctx.a(d)} {ctx.a(d)} and not {ctx.a(c)}", text,
                   figures, [table], summary)
