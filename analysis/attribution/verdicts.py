"""Every method's maps with their faithfulness numbers, and the verdicts a report states.

`measure` runs the methods on a batch, the deletion/insertion comparison on all of it and the
randomisation check on (the first `randomise` images of) it, and returns one JSON-ready dict;
`verdict_rows` turns that into one row per method: does it beat the random order, does it beat
the edge map, does it pass the randomisation check, with the numbers. `table_html` is that table
for a page (the predict report and the analyze section share it).
"""

from __future__ import annotations

import html

import numpy as np

from analysis.attribution import faithfulness
from analysis.attribution.methods import COMPLETENESS_TOLERANCE, Attributor, target_weights, title


def measure(attributor, x, w, steps: int = 16, randomise: int = 20, seed: int = 0,
            maps=None) -> dict:
    """Maps of every method for (x, w) and their faithfulness.

    Parameters
    ----------
    attributor : `methods.Attributor`.
    x : (N, H, W, C) float32 images; w : (N, classes) target rows (`methods.target_weights`).
    steps : slices of the deletion/insertion curves.
    randomise : images the randomisation check uses (the first ones; it recomputes every map
        once per weighted layer).
    maps : precomputed {method: maps} (default: computed here, with the completeness check).

    Returns
    -------
    dict: "maps" {method: (N, H, W)}, "completeness" (integrated gradients: per-image relative
    error, the fraction within 1%), "deletion" (faithfulness.deletion_insertion's summary and
    curves), "randomisation" (faithfulness.randomisation_check), "rows" (verdict_rows).
    """
    check = None
    if maps is None:
        maps, check = attributor.all_maps(x, w)
    elif "integrated_gradients" in maps:
        _, check = attributor.integrated_gradients(x, w, return_check=True)
    deletion = faithfulness.deletion_insertion(attributor, x, w, maps, steps, seed)
    k = max(1, min(randomise, len(x)))
    randomisation = faithfulness.randomisation_check(
        attributor, x[:k], w[:k], {name: m[:k] for name, m in maps.items()}, seed)
    completeness = None
    if check is not None:
        err = check["relative_error"]
        completeness = {"relative_error": err.tolist(), "max_relative_error": float(err.max()),
                        "within_1_percent": float((err <= COMPLETENESS_TOLERANCE).mean()),
                        "sum": check["sum"].tolist(), "delta": check["delta"].tolist(),
                        "steps": attributor.ig_steps, "max_steps": int(check["steps"].max()),
                        "redone": int((check["steps"] > attributor.ig_steps).sum())}
    result = {"maps": maps, "completeness": completeness, "deletion": deletion,
              "randomisation": randomisation, "images": len(x), "randomised_images": k}
    result["rows"] = verdict_rows(result)
    return result


def verdict_rows(result: dict) -> list:
    """One dict per method: the numbers and the three verdicts (booleans)."""
    summary = result["deletion"]["summary"]
    rand = result["randomisation"]
    rows = []
    for name in result["maps"]:
        s = summary[name]
        rows.append({
            "method": name, "title": title(name),
            "deletion_auc": s["deletion_auc"], "insertion_auc": s["insertion_auc"],
            "beats_random_deletion": s["beats_random_deletion"],
            "beats_random_insertion": s["beats_random_insertion"],
            "beats_sobel_deletion": s["beats_sobel_deletion"],
            "beats_sobel_insertion": s["beats_sobel_insertion"],
            "beats_random": s["beats_random"], "beats_sobel": s["beats_sobel"],
            "randomised_correlation": rand["correlation"][name][-1],
            "randomised_correlation_all": rand["correlation_all"][name][-1],
            "passes_randomisation": rand["passes"][name]})
    return rows


def controls(result: dict) -> dict:
    """Mean AUCs of the random and Sobel orders."""
    s = result["deletion"]["summary"]
    return {name: {"deletion_auc": s[name]["deletion_auc"], "insertion_auc": s[name]["insertion_auc"]}
            for name in ("random", "sobel")}


def best_against_random(rows: list) -> dict:
    """The method that beats random deletion on the most images (name, fraction)."""
    best = max(rows, key=lambda r: r["beats_random_deletion"])
    return {"method": best["method"], "fraction": best["beats_random_deletion"]}


def public(result: dict) -> dict:
    """`result` without the maps and the per-step curves (for summary.json)."""
    curves = result["deletion"]["curves"]
    return {"images": result["images"], "randomised_images": result["randomised_images"],
            "completeness": None if result["completeness"] is None else
            {k: v for k, v in result["completeness"].items() if k in
             ("max_relative_error", "within_1_percent", "steps", "max_steps", "redone")},
            "controls": controls(result), "rows": result["rows"],
            "randomisation": result["randomisation"],
            "mean_curves": {name: {kind: np.asarray(c[kind]).mean(axis=0).round(4).tolist()
                                   for kind in ("deletion", "insertion")}
                            for name, c in curves.items()}}


def _yes(flag: bool) -> str:
    return "yes" if flag else "<b>no</b>"


def table_html(result: dict) -> str:
    """The verdict table: per method, deletion/insertion AUC and how often it beats the random
    and the Sobel order, the randomisation correlation and the three verdicts."""
    c = controls(result)
    head = ("<tr><th>method</th><th>deletion AUC (lower is better)</th><th>insertion AUC "
            "(higher)</th><th>beats random: deletion / insertion (share of images)</th>"
            "<th>beats Sobel edges: deletion / insertion</th><th>beats random</th>"
            "<th>beats edges</th><th>rank corr. after randomising all layers: ink / all "
            "pixels</th><th>explains the model (passes randomisation)</th></tr>")
    rows = [head]
    for r in result["rows"]:
        rows.append(
            f"<tr><td>{html.escape(r['title'])}</td><td>{r['deletion_auc']:.3f}</td>"
            f"<td>{r['insertion_auc']:.3f}</td><td>{r['beats_random_deletion']:.0%} / "
            f"{r['beats_random_insertion']:.0%}</td><td>{r['beats_sobel_deletion']:.0%} / "
            f"{r['beats_sobel_insertion']:.0%}</td><td>{_yes(r['beats_random'])}</td>"
            f"<td>{_yes(r['beats_sobel'])}</td><td>{r['randomised_correlation']:.2f} / "
            f"{r['randomised_correlation_all']:.2f}</td>"
            f"<td>{_yes(r['passes_randomisation'])}</td></tr>")
    for name in ("random", "sobel"):
        rows.append(f"<tr class='control'><td>{name} order (control)</td>"
                    f"<td>{c[name]['deletion_auc']:.3f}</td><td>{c[name]['insertion_auc']:.3f}</td>"
                    "<td colspan='6'></td></tr>")
    comp = result["completeness"]
    note = ""
    if comp is not None:
        note = (f"<p>Integrated gradients' completeness ({comp['steps']} path points, up to "
                f"{comp['max_steps']} for {comp['redone']} image(s) that needed more): the map "
                f"sums to f(x) - f(black) within 1% on {comp['within_1_percent']:.0%} of the "
                f"{result['images']} image(s); largest error {comp['max_relative_error']:.2%}.</p>")
    rand = result["randomisation"]
    note += (f"<p>Deletion/insertion on {result['images']} image(s), "
             f"{len(next(iter(result['deletion']['curves'].values()))['deletion'][0]) - 1} steps. "
             f"Randomisation: layers re-initialised top down ({', '.join(rand['layers'])}) on "
             f"{result['randomised_images']} image(s); a method passes when the rank "
             f"correlation of |map| on the ink with the trained model's falls below "
             f"{rand['threshold']}; the Sobel control stays at "
             f"{rand['correlation']['sobel'][-1]:.2f}.</p>")
    return f"<table class='verdicts'>{''.join(rows)}</table>{note}"


def attribute(model, x, y, contrast=None, randomise: int = 20, seed: int = 0) -> dict:
    """Every attribution method's maps of `x` for its classes `y`, with their faithfulness.

    Parameters
    ----------
    model : keras.Model (float32, e.g. `mnist_cnn.load_model`).
    x : float32 (N, 28, 28, 1) images in [0, 1] (`mnist_cnn.to_input`); y : (N,) classes whose
        logit is explained.
    contrast : None, a class or (N,) classes: explain "y rather than contrast" instead.
    randomise : images the model-randomisation check uses (the first ones).
    seed : seed of the random order and the re-initialisations.

    Returns
    -------
    dict, as `measure`: "maps" {method: (N, H, W)}, "completeness", "deletion",
    "randomisation", and "rows" (one verdict per method: beats random / Sobel, passes the
    randomisation check).
    """
    attributor = Attributor(model)
    weights = target_weights(y, contrast, attributor.num_classes)
    return measure(attributor, x, weights, randomise=randomise, seed=seed)
