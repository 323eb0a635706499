"""The predict report's page: `write_report` writes index.html, its pictures and summary.json
into a folder (the caller makes it atomic)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis import html
from analysis import pictures
from analysis.attribution.verdicts import public, table_html
from analysis.attribution.methods import title
from analysis.pictures import gray, save_png
from analysis.predict import svg
from mnist_cnn.fileio import write_bytes, write_json

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
img.px{image-rendering:pixelated}figure{display:inline-block;margin:.3em .6em .6em 0;vertical-align:top}
figcaption{font-size:.8em;max-width:320px}table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .4em;text-align:right}th{background:#f4f4f4}
td:first-child{text-align:left}tr.control td{color:#666}.answer{font-size:1.3em}
.small{font-size:.85em;color:#555}"""


def _fig(src: str, caption: str, width: int, height: int, cls: str = "px") -> str:
    return (f'<figure><img class="{cls}" src="{src}" width="{width}" height="{height}" '
            f'alt="{html.escape(caption)}"><figcaption>{caption}</figcaption></figure>')


def _attribution_block(out: Path, field, result: dict, key: str, heading: str) -> str:
    figs = []
    for name, maps in result["maps"].items():
        src = f"img/{key}-{name.replace(':', '-')}.png"
        save_png(pictures.overlay(field, maps[0]), out / src)
        total = float(maps[0].sum())
        figs.append(_fig(src, f"{html.escape(title(name))} (sum {total:+.3g})", 140, 140))
    curves = result["deletion"]["curves"]
    return (f"<h3>{heading}</h3>{''.join(figs)}<div>{svg.curves_svg(curves, 'deletion')}"
            f"{svg.curves_svg(curves, 'insertion')}</div>{table_html(result)}")


def write_page(out, item: dict, oips: dict, site_link, names) -> dict:
    """Write one image's report into the folder `out`.

    Parameters
    ----------
    out : folder (exists, empty).
    item : the computed report of one image (see `analysis.predict.predict_images`): path, ink,
        field, answer, maps, top maps, attributions, neighbours.
    oips : {map index: (28, 28) image} of the last conv layer's top maps (may be empty).
    site_link : relative path of the explorer site from `out`, or None.
    names : class names, indexable by label.

    Returns
    -------
    dict, the summary (also written to out/summary.json).
    """
    out = Path(out)
    (out / "img").mkdir()
    item["thumbnail"].save(out / "img" / "given.png")
    save_png(gray(item["field"]), out / "img" / "field.png")
    (label, p1), *others = item["answer"]
    contrast = item["contrast"]
    ink = item["ink"]
    runner = ", ".join(f"{names[c]} {p:.1%}" for c, p in others)
    head = (f"<h1>{html.escape(item['name'])}: {html.escape(str(names[label]))}</h1>"
            f"<p class='answer'>The network says <b>{html.escape(str(names[label]))}</b> with "
            f"probability {p1:.1%}; next {html.escape(runner)}.</p>"
            f"<p class='small'>{html.escape(str(item['path']))}: {ink.format} {ink.size[0]}x"
            f"{ink.size[1]} {ink.mode}; read as {ink.polarity}; cropped to its ink, scaled into "
            "20x20 keeping the aspect and centred by its centre of mass in 28x28, as MNIST's "
            f"digits were made.</p>"
            + _fig("img/given.png", "as given", *item["thumbnail"].size, cls="")
            + _fig("img/field.png", "as the network sees it (28x28)", 168, 168))

    layers = []
    for name, maps in item["maps"].items():
        w, h = save_png(pictures.feature_grid(maps), out / "img" / f"maps-{name}.png")
        scale = max(1, min(4, 420 // max(w, 1)))
        layers.append(_fig(f"img/maps-{name}.png", f"{name}: {maps.shape[-1]} maps of "
                           f"{maps.shape[0]}x{maps.shape[1]}", w * scale, h * scale))
    maps_html = "<h2>Feature maps of every layer</h2>" + "".join(layers)

    top_html = ""
    if item["top"] is not None:
        layer, idx, means = item["top"]
        cells = []
        for i, m in zip(idx, means):
            unit = f"{layer}-{int(i)}"
            act = item["maps"][layer][..., int(i)]
            save_png(gray(act / act.max() if act.max() > 0 else act), out / "img" / f"top-{unit}.png")
            body = _fig(f"img/top-{unit}.png", f"map {int(i)}: mean {m:.3g}", 84, 84)
            if int(i) in oips:
                save_png(gray(oips[int(i)]), out / "img" / f"oip-{unit}.png")
                body += _fig(f"img/oip-{unit}.png", "its OIP", 84, 84)
            if site_link:
                body = f'<a href="{site_link}/{unit}.html">{body}</a>'
            cells.append(f"<div style='display:inline-block;margin-right:1em'>{body}</div>")
        source = ("OIPs and links from the explorer site" if site_link else
                  "OIPs computed here (run `make explore` for the unit pages)") if oips else ""
        top_html = (f"<h2>The most active maps of {layer}</h2><p class='small'>By mean activation "
                    f"on this image. {source}</p>{''.join(cells)}")

    attr = item["attributions"]
    attr_html = ("<h2>Which pixels made it say so</h2><p class='small'>Red pushes the target up, "
                 "blue down (each map on its own scale, the image's ink in grey). Below each set: "
                 "the deletion and insertion curves and the faithfulness verdicts (how to read "
                 "them: docs/predict.md).</p>"
                 + _attribution_block(out, item["field"], attr["class"], "class",
                                      f"logit({html.escape(str(names[label]))})")
                 + _attribution_block(out, item["field"], attr["pair"], "pair",
                                      f"{html.escape(str(names[label]))} rather than "
                                      f"{html.escape(str(names[contrast]))}: logit difference"))

    idx, dist, y, images = item["neighbours"]
    figs = []
    for rank, (i, d) in enumerate(zip(idx, dist)):
        save_png(gray(images[rank] / 255.0), out / "img" / f"near-{rank}.png")
        figs.append(_fig(f"img/near-{rank}.png", f"#{int(i)} {html.escape(str(names[int(y[rank])]))}"
                         f" d={d:.2f}", 84, 84))
    near_html = (f"<h2>Nearest training images</h2><p class='small'>In the space of the last "
                 f"hidden layer ({item['hidden_layer']}, {item['hidden_units']} units), "
                 f"Euclidean distance.</p>{''.join(figs)}")

    text = html.page(f"predict {item['name']}", f"{head}{attr_html}{top_html}{maps_html}{near_html}",
                     style=CSS, lang=None, doctype="<!doctype html>", quote="'", end="")
    write_bytes(out / "index.html", text.encode())
    summary = {"image": str(item["path"]), "format": ink.format, "size": list(ink.size),
               "mode": ink.mode, "polarity": ink.polarity, "model": item["model"],
               "answer": [{"class": c, "name": str(names[c]), "probability": p}
                          for c, p in item["answer"]],
               "contrast": contrast,
               "attribution": {"class": public(attr["class"]), "pair": public(attr["pair"])},
               "neighbours": [{"index": int(i), "label": int(l), "distance": float(d)}
                              for i, l, d in zip(idx, y, dist)]}
    np.save(out / "field.npy", item["field"])
    write_json(out / "summary.json", json.loads(json.dumps(summary, default=_plain)))
    return summary


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)
