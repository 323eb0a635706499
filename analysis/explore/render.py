"""Write the explorer site: index, one page per layer, one per unit, their JSON and pictures.

All links are relative and every file is local (one stylesheet, one script), so the folder
works opened from disk, copied, or served by any static server, with no network access. What the
pages say about each layer comes from `table` (`build.render_table`, read from the model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis import html
from analysis import pictures
from analysis.explore import svg
from analysis.explore.concept_tables import layer_concept_section, unit_concept_section
from mnist_cnn.data.registry import get_dataset

ASSETS = Path(__file__).with_name("assets")
MEASURE = {"conv": "its peak: the largest value of the map over its positions",
           "dense": "its value", "output": "its logit (the input of the softmax)"}
SI_FORMULA = ("SI = (&mu;<sub>pref</sub> &minus; &mu;<sub>rest</sub>) / (&mu;<sub>pref</sub> + "
              "&mu;<sub>rest</sub> &minus; 2&middot;floor)")
e = html.escape


def _measure(table, layer):
    return MEASURE[table[layer]["role"]]


def _example(table) -> str:
    """A unit name for the jump box's hint: conv_3-48 on the series' network."""
    convs = [name for name, t in table.items() if t["role"] == "conv"] or list(table)
    return f"{convs[-1]}-{min(48, table[convs[-1]]['units'] - 1)}"


def _pct(v, digits=2):
    return "&ndash;" if v is None else f"{100 * v:+.{digits}f}"


def _dataset(site: dict):
    """The site's `DatasetInfo` (sites written before Fashion-MNIST are MNIST)."""
    return get_dataset(site.get("dataset", "mnist"))


def _class(site: dict, k) -> str:
    """Class `k` for a page: "6" for digits, "6 (Shirt)" where classes have names; None: a dash."""
    return "&ndash;" if k is None else e(_dataset(site).class_label(k))


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


def _class_cells(site: dict) -> str:
    """The header cells of a per-class table: the digits, or "6 (Shirt)"."""
    return "".join(f"<td>{_class(site, k)}</td>" for k in range(_dataset(site).num_classes))


def _class_key(site: dict) -> str:
    """Which class each index on a chart's axis is, where classes have names ("" for digits)."""
    info = _dataset(site)
    if not info.has_class_names:
        return ""
    return " Classes: " + ", ".join(f"{k} {e(n)}" for k, n in enumerate(info.class_names)) + "."


def _dataset_row(site: dict) -> str:
    """The index's data-set row with the class names; none for MNIST (its pages stay as they were)."""
    info = _dataset(site)
    if not info.has_class_names:
        return ""
    return f"<tr><th>data set</th><td>{e(info.title)}.{_class_key(site)}</td></tr>"


def _page(title: str, body: str, table: dict, layer: str | None = None) -> str:
    nav = " ".join(f'<a href="{name}.html"{" class=here" if name == layer else ""}>{name}</a>'
                   for name in (*table, "draw"))  # draw.html: analysis/explore/draw.py
    header = (f'<header><a class="home" href="index.html">mnist_cnn explorer</a> <nav>{nav}</nav>'
              '<form class="jump" autocomplete="off"><input name="unit" placeholder="unit, e.g. '
              f'{_example(table)}"'
              ' aria-label="jump to a unit" list="unit-names"><button>Go</button>'
              '<span class="jump-msg" role="status"></span></form></header>')
    return html.page(title, f"{header}<main>{body}</main>", stylesheets=["site.css"],
                     scripts=["site.js"], viewport=True)


def _strip(src: str, count: int, size: int, scale: int, alt: str, boxes=None) -> str:
    """A strip of `count` square images of `size` px (1 px apart), shown `scale` times larger,
    with receptive-field boxes ((r0, r1), (c0, c1)) drawn over image i where boxes[i] is set."""
    width, height = (count * (size + 1) - 1) * scale, size * scale
    img = (f'<img class="px" src="{src}" width="{width}" height="{height}" alt="{e(alt)}">')
    if not boxes:
        return img
    marks = "".join(
        f'<span class="box{" thin" if (c1 - c0) * scale < 24 else ""}" style="left:'
        f'{(i * (size + 1) + c0) * scale}px;top:{r0 * scale}px;width:{(c1 - c0) * scale}px;'
        f'height:{(r1 - r0) * scale}px"></span>'
        for i, b in enumerate(boxes) if b for (r0, r1), (c0, c1) in [b])
    return f'<span class="boxes" style="width:{width}px;height:{height}px">{img}{marks}</span>'


def _thumb(name: str, size: int = 28) -> str:
    return f'<img class="px" src="img/{name}.png" width="{size}" height="{size}" alt="OIP of {name}">'


RARE = 0.01  # active on fewer test images than this: its selectivity rests on a handful


def _badge(u: dict, table: dict) -> str:
    if u["dead"]:
        return '<span class="badge dead">dead</span>'
    rare = (table[u["layer"]]["role"] != "output" and u["active_fraction"] < RARE)
    return ('<span class="badge alive">alive</span>' + (
        f' <span class="badge rare" title="active on {100 * u["active_fraction"]:.2f}% of test '
        'images">rare</span>' if rare else ""))


# ---------------------------------------------------------------------------------------------

def index_page(site: dict, table: dict) -> str:
    check = site["oip_check"]
    rows = []
    for layer in table:
        info = site["layers"][layer]
        c = check[layer]
        width = 2 * im_width(table, layer)
        rows.append(
            f'<section class="layer"><h2><a href="{layer}.html">{layer}</a></h2>'
            f'<p>{e(table[layer]["kind"])} &middot; output {"&times;".join(map(str, info["shape"]))} &middot; '
            f'<b>{info["units"]} units</b> &middot; receptive field {info["receptive_field"]}&times;'
            f'{info["receptive_field"]} px &middot; {info["dead"]} dead &middot; mean selectivity '
            f'{info["mean_selectivity"]:.2f} &middot; OIP above the test maximum for '
            f'{c["best_beats"]}/{c["live"]} live units</p>'
            f'<a href="{layer}.html"><img class="px mosaic" src="img/{layer}.png" width="{width}" '
            f'alt="OIPs of all {info["units"]} units of {layer}"></a></section>')
    s = site["oip_settings"]
    total = sum(t["units"] for t in table.values())
    body = (
        f"<h1>What every unit of the CNN reacts to</h1>"
        f'<table class="key"><tr><th>model</th><td><code>{e(site["model"]["file"])}</code></td></tr>'
        f'<tr><th>SHA-256</th><td><code>{site["model"]["sha256"]}</code></td></tr>'
        + _dataset_row(site) +
        f'<tr><th>test accuracy</th><td>{100 * site["test_accuracy"]:.2f}% on {site["test_images"]:,} '
        f'test images{(" (" + e(site["data"]) + ")") if site["data"] else ""}</td></tr>'
        f'<tr><th>units</th><td>{total}: ' + ", ".join(f"{k} {t['units']}" for k, t in table.items()) + "</td></tr>"
        f'<tr><th>OIPs</th><td>{s["starts"]} per unit, {s["steps"]} steps from multi-scale noise '
        f'(seed {s["seed"]}, {s["precision"]}); {s["starts"]} more for a unit the first left at or '
        f'below its largest test activation</td></tr>'
        f'<tr><th>built in</th><td>{site["seconds"].get("total", 0):.0f} s</td></tr></table>'
        "<p>The network as a column of layers, input at the top. Each picture shows the OIPs "
        "(gradient-ascent input patterns) of all units of a layer; click a layer for its units, "
        f"or type a unit's name in the box above (e.g. <code>{_example(table)}</code>).</p>"
        '<div class="column"><div class="input">input 28&times;28</div>'
        + '<div class="arrow">&darr;</div>'.join(rows) +
        "</div>" + _reading_guide(site, table) +
        '<p class="small">All numbers: <a href="site.json">site.json</a> and one '
        "<code>&lt;unit&gt;.json</code> beside every unit page.</p>")
    return _page("mnist_cnn explorer", body, table)


def _reading_guide(site: dict, table: dict) -> str:
    noun = _dataset(site).class_noun
    dense = " and ".join(name for name, t in table.items() if t["role"] == "dense") or "a dense unit"
    return (
        "<h2 id=\"how\">How to read the numbers</h2><ul>"
        "<li><b>Activation</b> of a unit on an image: for a conv map its peak, the largest value "
        "over its positions (the box on a test image marks that position's receptive field); "
        f"for {dense} its value; for an output unit its logit.</li>"
        f"<li><b>Selectivity</b>: {SI_FORMULA}, with &mu;<sub>pref</sub> the mean activation on "
        "the preferred class (the class with the largest mean), &mu;<sub>rest</sub> the mean of the "
        "other nine class means, floor 0 after a ReLU (for logits the smallest on the test set). 0: "
        f"the unit responds to all {_plural(noun)} alike; 1: only to its preferred {noun}. A unit "
        f"that fires on a handful of images of one {noun} also gets 1 (badge <i>rare</i>): read "
        "SI with the AUC, which is then close to 0.5.</li>"
        "<li><b>AUC</b> (one vs rest): the probability that a random test image of the preferred "
        "class activates the unit more than a random image of another class. 0.5 is chance.</li>"
        "<li><b>Causal effect</b>: the change in test accuracy (percentage points) and in the "
        "mean probability given to the true class when this unit alone is set to zero "
        "everywhere and the rest of the network is run. Negative: the network needs the unit. "
        "Single units rarely matter much; a unit with a high selectivity but no effect is "
        "redundant, not unimportant to what the layer represents.</li>"
        "<li><b>OIP</b>: an input found by gradient ascent that makes the unit's mean activation "
        "(map mean for conv maps) large. It is shown from several start images; the mean "
        "pairwise correlation says whether they agree.</li></ul>")


def im_width(table: dict, layer: str) -> int:
    cols = min(table[layer]["units"], 16)
    return cols * 30 - 2


def layer_page(site: dict, layer: str, units: list, table: dict) -> str:
    tiles = []
    for u in units:
        c = u["causal"]
        pref = _class(site, u["preferred"])
        tiles.append(
            f'<a class="tile{" is-dead" if u["dead"] else ""}" href="{u["name"]}.html" '
            f'data-index="{u["index"]}" data-sel="{u["selectivity"]}" data-max="{u["max"]}" '
            f'data-acc="{c["accuracy_all"]}" data-p="{c["probability_all"]}">'
            f'{_thumb(u["name"], 56)}<span class="name">{u["name"]}</span> {_badge(u, table)}'
            f'<span>class {pref} &middot; SI {u["selectivity"]:.2f}</span>'
            f'<span>max {u["max"]:.3g} &middot; &Delta;acc {_pct(c["accuracy_all"])}</span></a>')
    names = list(table)
    i = names.index(layer)
    info = site["layers"][layer]
    prev_next = " ".join(f'<a href="{names[j]}.html">{label} {names[j]}</a>'
                         for j, label in ((i - 1, "&larr;"), (i + 1, "&rarr;")) if 0 <= j < len(names))
    body = (
        f'<nav class="unitnav"><a href="index.html">index</a> {prev_next}</nav>'
        f"<h1>{layer}: {info['units']} units</h1>"
        f"<p>{e(table[layer]['kind'])}; output {'&times;'.join(map(str, info['shape']))}. Activation of a "
        f"unit on an image: {_measure(table, layer)}. Each tile: the unit's OIP, whether it is dead "
        "(zero on every test image) or rare (active on under 1% of them: its SI rests on a few "
        "images), its preferred class, selectivity index (SI), its largest "
        "activation on the test set and the change in test accuracy (percentage points) when "
        'it alone is zeroed. <a href="index.html#how">How to read them</a>.</p>'
        '<p class="sort">Sort by: <button data-sort="index" class="on">unit</button>'
        '<button data-sort="sel">selectivity</button><button data-sort="max">largest test '
        'activation</button><button data-sort="effect">causal effect</button></p>'
        f'<div id="tiles" class="tiles">{"".join(tiles)}</div>{layer_concept_section(units)}')
    return _page(f"{layer} - mnist_cnn explorer", body, table, layer)


def _captions(site: dict, entries) -> str:
    info = _dataset(site)
    return " ".join(f'<span title="test image #{t["index"]}, label {e(info.class_label(t["label"]))}">'
                    f'#{t["index"]} <b>{e(info.class_name(t["label"]))}</b> {t["activation"]:.3g}'
                    "</span>" for t in entries)


def _link_list(links, key) -> str:
    items = "".join(f'<li><a href="{k["unit"]}.html">{_thumb(k["unit"], 28)} {k["unit"]}</a> '
                    f'{key} {k["strength"]:+.3g}</li>' for k in links)
    return f'<ul class="links">{items}</ul>'


def unit_page(site: dict, u: dict, table: dict) -> str:
    name, layer, o, c = u["name"], u["layer"], u["oip"], u["causal"]
    role = table[layer]["role"]
    nav = ('<nav class="unitnav">'
           + (f'<a rel="prev" href="{u["previous"]}.html">&larr; {u["previous"]}</a> '
              if u["previous"] else "")
           + f'<a href="{layer}.html">{layer}</a> '
           + (f'<a rel="next" href="{u["next"]}.html">{u["next"]} &rarr;</a>' if u["next"] else "")
           + "</nav>")
    pref, noun = u["preferred"], _dataset(site).class_noun
    key = (f'<p class="keyline">preferred class <b>{_class(site, pref)}</b> &middot; '
           f'selectivity <b>{u["selectivity"]:.3f}</b> &middot; AUC '
           f'<b>{"&ndash;" if u["auc_preferred"] is None else format(u["auc_preferred"], ".3f")}</b> '
           f'&middot; largest test activation <b>{u["max"]:.4g}</b> &middot; '
           + ("" if role == "output" else
              f'active on {100 * u["active_fraction"]:.1f}% of test images &middot; ')
           + f'zeroed: accuracy <b>{_pct(c["accuracy_all"])}</b> pp</p>')
    starts = len(o["activation"])
    oip_rows = "".join(f'<td>{"&#9733; " if s == o["best"] else ""}{o["activation"][s]:.4g}</td>'
                       for s in range(starts))
    peak_rows = ("<tr><th>peak (as below)</th>" + "".join(f"<td>{o['peak'][s]:.4g}</td>"
                                                        for s in range(starts)) + "</tr>"
                 if role == "conv" else "")
    objective = "map mean" if role == "conv" else ("logit" if role == "output" else "value")
    agreement = ("" if o["agreement"] is None else
                 f" The {starts} OIPs agree with mean pairwise correlation <b>r = "
                 f"{o['agreement']:.2f}</b> (1: identical; near 0: different patterns, or the same "
                 "pattern shifted).")
    oips = (f'<section id="oips"><h2>OIPs</h2>'
            f'{_strip(f"img/{name}-oips.png", starts, 28, 3, f"{starts} OIPs of {name}")}'
            f'<table class="nums"><tr><th>start</th>' + "".join(f"<td>{s}</td>" for s in range(starts))
            + f"</tr><tr><th>{objective}</th>{oip_rows}</tr>{peak_rows}</table><p>&#9733; the "
            f"unit's OIP (largest {objective}), shown on the layer page. Largest {objective} on a test image: <b>{o['data_max']:.4g}</b>; the "
            f"OIP {'beats' if o['beats_data_max'] else 'does <b>not</b> beat'} it.{agreement}"
            + (f" These are a second set of {starts} starts: the first set's best stayed at or below the "
               "test maximum." if o["retried"] else "") + "</p></section>")
    if u["dead"]:
        images = ('<section id="top"><h2>Top test images</h2><p>Dead: zero on every test image, '
                  "so no image excites it.</p></section>")
    else:
        crops, boxes = "", [t["box"] for t in u["top"]]
        low = _dataset(site).class_label(pref)  # a live unit has a preferred class
        if boxes[0]:
            field = boxes[0][0][1] - boxes[0][0][0]
            enlarged = _strip(f"img/{name}-crops.png", 9, field, max(1, round(54 / field)),
                              "receptive-field crops")
            crops = (f"<figure>{enlarged}<figcaption>The receptive field ({field}&times;{field} "
                     "px) around each peak, enlarged.</figcaption></figure>")
        images = (
            f'<section id="top"><h2>Top test images</h2><div class="row"><figure>'
            f'{_strip(f"img/{name}-top.png", 9, 28, 3, f"top test images of {name}", boxes)}<figcaption>'
            f"The 9 test images that excite {name} most (test index, <b>label</b>, activation)"
            f"{'; box: receptive field of the peak' if role == 'conv' else ''}.<br>"
            f'{_captions(site, u["top"])}</figcaption></figure>{crops}</div><figure>'
            f'{_strip(f"img/{name}-attribution.png", len(u["top"]), 28, 3, f"attribution of {name}")}'
            f"<figcaption>Which pixels drive {name} on each of them: gradient &times; input of "
            f"its pre-activation{' at the peak' if role == 'conv' else ''} (red up, blue down; "
            "docs/predict.md).</figcaption></figure><figure>"
            f'{_strip(f"img/{name}-low.png", 9, 28, 3, f"least exciting images of class {low}")}'
            f"<figcaption>The 9 images of its preferred class {_class(site, pref)} that excite it "
            f'least.<br>{_captions(site, u["low"])}</figcaption></figure></section>')
    auc_row = "".join(f"<td>{a:.3f}</td>" for a in u["auc"])
    classes = (
        f'<section id="classes"><h2>Activation by class</h2>'
        f'{svg.box_plot(u["class_quantiles"], u["class_mean"], -1 if pref is None else pref)}'
        f"<p class=small>Per {noun} over the test set: whiskers 5&ndash;95%, box 25&ndash;75%, "
        f"line median, dot mean; orange: preferred class.{_class_key(site)}</p>"
        '<table class="nums"><tr><th>class</th>' + _class_cells(site)
        + f"</tr><tr><th>AUC one vs rest</th>{auc_row}</tr></table>"
        f"<p>Selectivity index {SI_FORMULA} = <b>{u['selectivity']:.3f}</b> (floor: 0 after a "
        "ReLU; for logits the smallest on the test set).</p></section>")
    concepts = unit_concept_section(u)
    circ = u["circuit"]
    parts = []
    if "kernel" in circ:
        size = table[layer]["kernel"].replace("x", "&times;")
        parts.append(f"<div><h3>Kernel ({size} on the image)</h3>{svg.kernel(circ['kernel'])}</div>")
    if "inputs" in circ:
        measure = table[layer]["in_measure"]
        if measure == "drive":
            measure = f"mean drive on images of its {noun} (activation &times; weight)"
        parts.append(f"<div><h3>Strongest inputs ({measure})</h3>{_link_list(circ['inputs'], '')}</div>")
    if "outputs" in circ:
        measure = table[layer]["out_measure"]
        parts.append(f"<div><h3>Feeds most ({measure})</h3>{_link_list(circ['outputs'], '')}</div>")
    circuit = f'<section id="circuit"><h2>Circuit</h2><div class="row">{"".join(parts)}</div></section>'
    acc = [100 * v for v in c["accuracy"]]
    prob = [100 * v for v in c["probability"]]
    causal = (
        f'<section id="causal"><h2>Causal effect</h2><p>{name} alone set to zero, the rest of the '
        f"network run: test accuracy changes by <b>{_pct(c['accuracy_all'])}</b> percentage points, "
        f"the mean true-class probability by <b>{_pct(c['probability_all'], 3)}</b> points.</p>"
        f'<div class="row">{svg.bars(acc, "change in accuracy per class (pp)")}'
        f'{svg.bars(prob, "change in mean true-class probability (pp)")}</div>'
        '<table class="nums"><tr><th>class</th>' + _class_cells(site)
        + "</tr><tr><th>&Delta; accuracy (pp)</th>" + "".join(f"<td>{v:+.2f}</td>" for v in acc)
        + "</tr><tr><th>&Delta; probability (pp)</th>" + "".join(f"<td>{v:+.3f}</td>" for v in prob)
        + "</tr></table></section>")
    body = (f"{nav}<h1>{name} {_badge(u, table)}</h1>{key}"
            f"<p class=small>{e(table[layer]['kind'])}; activation = {_measure(table, layer)}.</p>"
            f"{oips}{images}{classes}{concepts}{circuit}{causal}"
            f'<p class="small">Every number on this page: <a href="{name}.json">{name}.json</a>.</p>')
    return _page(f"{name} - mnist_cnn explorer", body, table, layer)


# ---------------------------------------------------------------------------------------------

def unit_pictures(out: Path, u: dict, oip_images: np.ndarray, x: np.ndarray) -> None:
    """The PNGs of one unit: its OIP, all its OIPs, top images, their crops, least exciting."""
    name, best = u["name"], u["oip"]["best"]
    pictures.save_png(pictures.gray(oip_images[best]), out / "img" / f"{name}.png")
    pictures.save_png(pictures.strip(oip_images), out / "img" / f"{name}-oips.png")
    if u["dead"]:
        return
    top = [x[t["index"]] for t in u["top"]]
    pictures.save_png(pictures.strip(top), out / "img" / f"{name}-top.png")
    if u["top"][0]["box"]:
        pictures.save_png(pictures.strip(pictures.crops(top, [t["box"] for t in u["top"]])), out / "img" / f"{name}-crops.png")
    pictures.save_png(pictures.strip([x[t["index"]] for t in u["low"]]), out / "img" / f"{name}-low.png")


def write_pages(out, site: dict, units: list, oip_images: dict, x: np.ndarray, table: dict) -> None:
    """Write every page, picture and JSON file into the existing folder `out`.

    oip_images : {layer: (starts, C, 28, 28)}; x : test images (N, 28, 28) in [0, 1];
    table : what the pages say about each unit layer (`build.render_table`).
    """
    out = Path(out)
    (out / "img").mkdir(exist_ok=True)
    for asset in ("site.css", "site.js"):
        text = (ASSETS / asset).read_text()
        if asset == "site.js":
            hint = ", ".join(f"{name}-0 to {name}-{t['units'] - 1}" if i == 0 else
                             f"{name}-0..{t['units'] - 1}" for i, (name, t) in enumerate(table.items()))
            text = (text.replace("/*UNITS*/", json.dumps([u["name"] for u in units]))
                    .replace("/*LAYERS*/", json.dumps(list(table)))
                    .replace("/*HINT*/", json.dumps(hint)))
        (out / asset).write_text(text)
    for layer in table:
        mine = [u for u in units if u["layer"] == layer]
        (out / f"{layer}.html").write_text(layer_page(site, layer, mine, table))
        best = oip_images[layer][[u["oip"]["best"] for u in mine], np.arange(len(mine))]
        pictures.save_png(pictures.grid(best, cols=min(len(mine), 16), gap=2), out / "img" / f"{layer}.png")
    for u in units:
        (out / f"{u['name']}.html").write_text(unit_page(site, u, table))
        (out / f"{u['name']}.json").write_text(json.dumps(u, separators=(",", ":")))
        unit_pictures(out, u, oip_images[u["layer"]][:, u["index"]], x)


def write_summary(out, site: dict, table: dict) -> None:
    """index.html and site.json (the model, the settings, the OIP check, per-layer numbers,
    timings), written last so that they can report the whole build."""
    (Path(out) / "index.html").write_text(index_page(site, table))
    files = [p for p in Path(out).rglob("*") if p.is_file()]
    site["files"] = len(files) + 1
    site["bytes"] = sum(p.stat().st_size for p in files)
    (Path(out) / "site.json").write_text(json.dumps(site, indent=1) + "\n")
