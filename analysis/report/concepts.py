"""`mnist_cnn concepts`: the concept page (issue #26, docs/concepts.md).

`write_concepts` runs `analysis.concepts.run` and writes, into a folder that replaces `out`
only when everything is written (`fileio.atomic_dir`): index.html (the page, with the style and
tables of the analyze report, `analysis.report.html`), probes.csv, tcav.csv, units.csv (the
strongest unit-concept correlations), causal.csv and concepts.json (every number and the
settings).
"""

from __future__ import annotations

from pathlib import Path

from analysis import html
from analysis.report.context import write_csv
from analysis.report.html import _STYLE, _html_table
from mnist_cnn.fileio import atomic_dir, save_figure, sha256_file, write_bytes, write_json

TOP_UNITS = 3  # units listed per layer and measurement
REPORT_PERMUTATIONS = 10000  # label shuffles per row in the digit report's section


def _fmt(v, digits=3):
    return round(v, digits) if isinstance(v, float) else v


def unit_rows(units: dict, top: int = TOP_UNITS) -> list:
    """The `top` units by |rho| per layer and measurement.

    Parameters
    ----------
    units : layer -> measurement -> list of Spearman rho per unit (`run`'s "units")
    top : units per (layer, measurement)

    Returns
    -------
    list of dicts: layer, concept, rank, unit, rho.
    """
    from analysis.concepts.units import most_tied

    return [{"layer": layer, "concept": name, "rank": r + 1, "unit": u, "rho": rho}
            for layer, by_name in units.items()
            for name, best in most_tied(by_name, top).items()
            for r, (u, rho) in enumerate(best)]


def causal_rows(causal) -> list:
    """The causal check as rows: one per group of digits (with loops, without)."""
    if not causal:
        return []
    return [{"layer": causal["layer"], "group": g, "images": causal[g]["images"], "k": causal["k"],
             "base": causal[g]["base"], "loop_units_zeroed": causal[g]["loop_units"],
             "random_units_zeroed_mean": causal[g]["random_mean"],
             "random_units_zeroed_std": causal[g]["random_std"],
             "drop_loop_units": causal[g]["drop_loop_units"],
             "drop_random": causal[g]["drop_random"], "draws": causal["draws"]}
            for g in ("with loops", "without")]


def causal_verdict(causal) -> str:
    """One sentence on what the causal check found, from its numbers."""
    w, wo = causal["with loops"], causal["without"]
    spread = max(2 * w["random_std"], 0.005)
    if w["drop_loop_units"] > w["drop_random"] + spread and \
            w["drop_loop_units"] > wo["drop_loop_units"] + spread:
        return (f"The loop units matter: zeroing them costs digits with loops "
                f"{w['drop_loop_units']:.1%} of accuracy, digits without "
                f"{wo['drop_loop_units']:.1%}, and as many random units "
                f"{w['drop_random']:.1%}.")
    return (f"The loop units only correlate: zeroing them costs digits with loops "
            f"{w['drop_loop_units']:.1%} of accuracy, no more than random units "
            f"({w['drop_random']:.1%}) or digits without loops ({wo['drop_loop_units']:.1%}).")


def render_page(result: dict, model_file: str, sha: str, dataset_title: str) -> str:
    """index.html of the concept report from `run`'s result (the figures beside it).

    Parameters
    ----------
    result : `analysis.concepts.run`'s dict; model_file, sha : the model's path and sha256
    dataset_title : "MNIST" or "Fashion-MNIST"

    Returns
    -------
    str, the page.
    """
    s = result["settings"]
    show = lambda rows: [{k: _fmt(v) for k, v in r.items()} for r in rows]  # noqa: E731
    probes = show([{**r, "trained - random": r["trained"] - r["random"]} for r in result["probes"]])
    tcav = sorted(result["tcav"], key=lambda r: (r["p_holm"], r["p"]))
    significant = [r for r in tcav if r["significant"]]
    floor = len(tcav) / (s["permutations"] + 1)
    e = html.escape
    parts = [f"<h1>Which human concepts the CNN uses ({e(dataset_title)})</h1>",
             f"<p>Model <code>{e(model_file)}</code> (sha256 {sha[:16]}...). "
             f"Measurements: {e(', '.join(result['names']))}."
             + (f" Skipped on this data set (they mean nothing on clothes): "
                f"{e(', '.join(result['skipped']))}." if result["skipped"] else "")
             + f" Images: {s['train_images']} training, {s['test_images']} test; probes on "
             f"{s['probe_train']} / {s['probe_test']}; TCAV {s['per_set']} images per side, "
             f"{s['permutations']} label permutations, seeds {', '.join(map(str, s['seeds']))}. "
             f"How to read these numbers, and how not to over-read them: docs/concepts.md.</p>",
             "<h2 id='examples'>The measurements</h2>",
             "<p>Each measurement is computed from the image alone (skeleton, distance "
             "transform, moments, holes): no hand labels. The 8 test images with the lowest and "
             "the highest value of each:</p><table><tr><th>measurement</th><th>lowest</th>"
             "<th>highest</th></tr>"]
    for name, ex in result["examples"].items():
        cells = []
        for end, key in (("low", "values_low"), ("high", "values_high")):
            values = ", ".join(f"{v:.3g}" for v in ex[key])
            cells.append(f"<td><img style='height:42px;image-rendering:pixelated' "
                         f"src='examples/{e(name)}-{end}.png' alt='{e(name)}: {end}est' "
                         f"title='{values}'><br><small>{values}</small></td>")
        parts.append(f"<tr><td>{e(name)}</td>{''.join(cells)}</tr>")
    parts += ["</table>",
              "<h2 id='probes'>Is a concept there? Linear probes, trained vs random weights</h2>",
              "<p>Held-out R² of a ridge regression (loops: accuracy of a ridge classifier on 0, "
              "1, 2+) from each layer's 2x2 average-pooled activations, beside the same probe on "
              "the same architecture with random weights. Random features decode a lot; only the "
              "difference is what training made.</p>",
              "<img src='probes.png' alt='probe scores per layer, trained and random weights' "
              "style='max-width:100%'>",
              _html_table(probes, "Probe scores per layer and measurement", link="probes.csv"),
              "<h2 id='tcav'>Does the class decision use it? TCAV</h2>",
              "<p>A concept is two sets of training images (loop: at least one closed loop vs "
              "none; every other measurement: its top vs bottom quartile). Its CAV is the "
              "direction separating them in a layer. <b>score</b>: the fraction of a class's test "
              "images whose logit grows along the CAV (Kim et al.'s TCAV score, first seed; mean "
              "and std over seeds beside it; null_score: the same for shuffled concept labels). "
              "On a small CNN it is nearly always 0 or 1, for random directions too, so the test "
              "uses the <b>magnitude</b>: the mean directional derivative along the unit CAV over "
              "the mean gradient norm (a cosine). <b>p</b>: two-sided, against the magnitudes of "
              "the same images with shuffled concept labels (null_sd: their spread); "
              "<b>p_holm</b>: Holm-adjusted over all "
              f"{len(tcav)} rows; significant: p_holm &lt; 0.05. With {s['permutations']} "
              f"permutations the smallest reachable p_holm is {floor:.3g}.</p>",
              f"<p><b>{len(significant)} of {len(tcav)}</b> rows are significant after the "
              "correction" + (": " + "; ".join(
                  f"class {r['class']} {'up' if r['magnitude'] > 0 else 'down'} along "
                  f"{e(r['concept'])} in {e(r['layer'])}" for r in significant[:12])
                  if significant else "") + ".</p>",
              _html_table(show(tcav), "TCAV per class, concept and layer, by p_holm",
                          link="tcav.csv"),
              "<h2 id='units'>Units most tied to each measurement</h2>",
              "<p>Spearman correlation of a unit's peak activation with a measurement over the "
              "test images; the strongest units per layer and measurement. A correlation is no "
              "cause: see the causal check.</p>",
              _html_table(show(unit_rows(result["units"])), "Top unit-concept correlations",
                          link="units.csv"),
              "<h2 id='causal'>Causal check</h2>"]
    rows = causal_rows(result["causal"])
    if rows:
        parts += [f"<p>Accuracy with the {result['causal']['k']} units of "
                  f"{e(result['causal']['layer'])} most correlated with the loop count set to "
                  "zero, against as many random units (mean and std over "
                  f"{result['causal']['draws']} draws), on digits with loops (0, 6, 8, 9) and "
                  f"without (1, 7). {e(causal_verdict(result['causal']))}</p>",
                  "<img src='causal.png' alt='accuracy after zeroing loop units and random units'>",
                  _html_table(show(rows), "Zeroing loop units", link="causal.csv")]
    else:
        parts.append("<p>Not run: it needs the loop count (not measured on this data set) and a "
                     "conv layer.</p>")
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
    parts.append(f"<p><small>Written by <code>python -m mnist_cnn concepts</code> ({secs}); every "
                 "number in <a href='concepts.json'>concepts.json</a>.</small></p>")
    return html.page(f"mnist_cnn: concepts ({dataset_title})", "\n".join(parts), style=_STYLE)


def write_concepts(model, data, out, model_path=None, dataset: str = "mnist", **options) -> dict:
    """Run the concept analyses and write the report folder `out` (replaced whole).

    Parameters
    ----------
    model : a trained accepted model; data : ((x_train, y_train), (x_test, y_test)) uint8
    out : the report folder; model_path : the model's file (recorded), or None
    dataset : "mnist" or "fashion"; **options : `analysis.concepts.run`'s (images, seeds, ...)

    Returns
    -------
    dict: `run`'s result with "files" (the names written, relative to `out`).
    """
    import matplotlib

    matplotlib.use("Agg")
    from analysis.concepts import run
    from analysis.concepts.plots import plot_causal, plot_probes
    from analysis.pictures import save_png, strip
    from mnist_cnn.data.registry import get_dataset

    result = run(model, data, dataset=dataset, **options)
    x_test = data[1][0]
    if result["settings"]["images"] is not None:  # run's indices are into its test subset
        x_test = x_test[result["test_indices"]]
    sha = sha256_file(model_path) if model_path else ""
    files = ["index.html", "probes.csv", "tcav.csv", "units.csv", "causal.csv", "concepts.json",
             "probes.png"]
    with atomic_dir(Path(out)) as tmp:
        write_csv(tmp / "probes.csv", result["probes"])
        write_csv(tmp / "tcav.csv", result["tcav"])
        write_csv(tmp / "units.csv", unit_rows(result["units"]))
        write_csv(tmp / "causal.csv", causal_rows(result["causal"]))
        save_figure(plot_probes(result["probes"]), tmp / "probes.png", dpi=90)
        if result["causal"]:
            save_figure(plot_causal(result["causal"]), tmp / "causal.png", dpi=90)
            files.append("causal.png")
        (tmp / "examples").mkdir()
        for name, ex in result["examples"].items():
            for end in ("low", "high"):
                idx = ex["lowest" if end == "low" else "highest"]
                save_png(strip(x_test[idx] / 255.0), tmp / "examples" / f"{name}-{end}.png")
                files.append(f"examples/{name}-{end}.png")
        write_json(tmp / "concepts.json", {"model": {"file": str(model_path or ""), "sha256": sha},
                                           **result})
        write_bytes(tmp / "index.html", render_page(result, str(model_path or "(in memory)"), sha,
                                                    get_dataset(dataset).title).encode())
    return {**result, "files": files}


def concepts_section(ctx):
    """The digit report's "4 and not 9: which concepts" (TCAV rows of the two classes).

    Concept sets come from the odd-indexed test images, measured; the class images are the
    even-indexed ones, so no image is in both. Holm's correction runs over this section's rows.
    """
    from analysis.concepts.core import tcav_rows
    from analysis.concepts.measure import measure_cached, names_for
    from analysis.report.context import Section

    pool, rest = ctx.x_test[1::2], ctx.x_test[0::2]
    values, _ = measure_cached(pool, names_for(ctx.dataset.name))
    rows, layers = tcav_rows(ctx.model, pool, values, rest, ctx.y_test[0::2],
                             classes=[ctx.digit, ctx.contrast], per_set=150, per_class=200,
                             permutations=REPORT_PERMUTATIONS, seeds=(0, 1, 2))
    a, b = ctx.name(ctx.digit), ctx.name(ctx.contrast)
    by = {(r["concept"], r["layer"], r["class"]): r for r in rows}
    table, opposite = [], []
    for concept, layer in dict.fromkeys((r["concept"], r["layer"]) for r in rows):
        row = {"concept": concept, "layer": layer}
        pair = [by.get((concept, layer, cls)) for cls in (ctx.digit, ctx.contrast)]
        for label, r in zip((a, b), pair):
            if r:
                row.update({f"score_{label}": round(r["score"], 3),
                            f"magnitude_{label}": round(r["magnitude"], 3),
                            f"p_holm_{label}": round(r["p_holm"], 4),
                            f"significant_{label}": r["significant"]})
        table.append(row)
        both = all(r and r["significant"] for r in pair)
        if both and pair[0]["magnitude"] * pair[1]["magnitude"] < 0:
            opposite.append(f"{concept} in {layer}")
    found = [f"{ctx.name(r['class'])} {'up' if r['magnitude'] > 0 else 'down'} along "
             f"{r['concept']} ({r['layer']})" for r in rows if r["significant"]]
    text = (f"TCAV on measured concepts (docs/concepts.md): for each concept (e.g. a closed loop "
            f"or not, thick or thin strokes) and layer, does the logit of {a} and of {b} follow "
            f"the concept's direction more than directions of random splits of the same images? "
            f"{len(rows)} tests, Holm-corrected over them ({REPORT_PERMUTATIONS:,} shuffles each). "
            + (f"Significant: {'; '.join(found)}." if found else
               "None is significant after the correction.")
            + (f" Opposite for the two: {', '.join(opposite)}." if opposite else "")
            + " The full concept page: `make concepts`.")
    t = ctx.table("concepts", f"TCAV rows of {a} and {b}: score (sign count), magnitude "
                  "(cosine), Holm-adjusted p.", table)
    return Section("concepts", f"{a} and not {b}: which concepts", text, [], [t],
                   {"rows": rows, "layers": layers})
