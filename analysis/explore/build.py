"""Build the explorer: compute every number (`compute`), gather them per unit, write the site
(`render`). `build_site` writes into a folder that must exist; `write_site` (in `__init__`)
gives it a temporary one that replaces the output folder only when complete.
"""

from __future__ import annotations

import time

import numpy as np

from analysis.attribution import units as unit_attribution
from analysis.concepts.units import unit_concepts
from analysis.explore import compute as C
from analysis.explore.causal import causal_effects
from analysis.explore.circuit import circuit as strongest_links
from analysis.explore.circuit import signed
from analysis.explore.draw import write_draw
from analysis.explore import render
from analysis.oip.ascent import OIPConfig
from analysis.oip.compute import oip_check
from analysis.site import GENERATOR
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import sha256_file
from mnist_cnn.data import to_input
from mnist_cnn.data.registry import get_dataset
from mnist_cnn.network import describe



def _g(v, digits: int = 5):
    """A float rounded to `digits` significant digits, for JSON."""
    return float(f"{float(v):.{digits}g}")


def _gl(values, digits: int = 5) -> list:
    return [_g(v, digits) for v in np.asarray(values).ravel()]


def _image_entries(indices, info, unit, acts, y) -> list:
    """Test images of one unit: index, label, activation and (conv) the peak's input box."""
    layer = info.name
    values = acts[layer][indices, unit]
    boxes = (C.peak_boxes(info, acts[f"{layer}_pos"][indices, unit]) if info.kind == "conv"
             else [None] * len(indices))
    return [{"index": int(i), "label": int(y[i]), "activation": _g(v),
             "box": [list(b[0]), list(b[1])] if b else None}
            for i, v, b in zip(indices, values, boxes)]


def unit_records(net, acts, stats, causal, circuit, oips, oip_peaks, y, concepts=None) -> list:
    """One JSON-ready dict per unit (network order) with every number its page shows;
    `concepts`: layer -> measurement -> (units,) Spearman rho (`analysis.concepts.units`)."""
    names = C.unit_names(net)
    first = net.conv_layers[0].name if net.conv_layers else None
    units = []
    for info in net.units:
        layer = info.name
        s, ce, o = stats[layer], causal[layer], oips[layer]
        links = circuit[layer]
        below, above = net.below(layer), net.above(layer)
        for u in range(info.channels):
            best = int(o["best"][u])
            pref = int(s["preferred"][u])
            record = {
                "name": f"{layer}-{u}", "layer": layer, "index": u,
                "position": len(units), "dead": bool(s["dead"][u]),
                "preferred": pref if pref >= 0 else None,
                "selectivity": _g(s["selectivity"][u], 4),
                "auc_preferred": _g(s["auc"][u, pref], 4) if pref >= 0 else None,
                "auc": _gl(s["auc"][u], 4), "max": _g(s["max"][u]),
                "active_fraction": _g(s["active_fraction"][u], 4),
                "class_mean": _gl(s["class_mean"][u]),
                "class_quantiles": [_gl(q) for q in s["class_quantiles"][u]],
                "oip": {"best": best, "activation": _gl(o["activation"][:, u]),
                        "peak": _gl(oip_peaks[layer][:, u]), "data_max": _g(o["data_max"][u]),
                        "beats_data_max": bool(o["activation"][best, u] > o["data_max"][u]),
                        "start_0_beats_data_max": bool(o["activation"][0, u] > o["data_max"][u]
                                                       and not o["retried"][u]),
                        "retried": bool(o["retried"][u]),
                        "agreement": None if np.isnan(o["agreement"][u]) else _g(o["agreement"][u], 4),
                        "images": [[_gl(row, 3) for row in img] for img in o["images"][:, u]]},
                "top": _image_entries(s["top"][u], info, u, acts, y),
                "low": _image_entries(s["low"][u], info, u, acts, y),
                "circuit": {},
                "concepts": {n: _g(r[u], 4) for n, r in (concepts or {}).get(layer, {}).items()},
                "causal": {"accuracy": _gl(ce["accuracy"][u]), "probability": _gl(ce["probability"][u]),
                           "accuracy_all": _g(ce["accuracy_all"][u]),
                           "probability_all": _g(ce["probability_all"][u])},
            }
            for key, other in (("inputs", below and below.name), ("outputs", above and above.name)):
                if key in links:
                    record["circuit"][key] = [
                        {"unit": f"{other}-{int(i)}", "strength": _g(w, 4)}
                        for i, w in zip(links[key][u], links[key.rstrip("s") + "_strength"][u])]
            if layer == first:
                record["circuit"]["kernel"] = [_gl(row, 4) for row in circuit["kernels"][u]]
            units.append(record)
    for i, record in enumerate(units):
        record["previous"] = names[i - 1] if i else None
        record["next"] = names[i + 1] if i + 1 < len(names) else None
    return units


def build_site(model, model_path, test_data, out, steps: int = 80, starts: int = 5, seed: int = 0,
               precision: str = "auto", data_source: str = "", dataset: str = "mnist",
               log=print) -> dict:
    """Compute everything and write the site into the existing folder `out`.

    Parameters
    ----------
    model : keras.Model (float32, `load_trained`)
    model_path : its file (named and hashed on the index), or None
    test_data : (x uint8 (N, 28, 28), y (N,)): every class must occur
    steps, starts, seed, precision : OIP settings (`analysis.oip.OIPConfig`; `starts` OIPs per
        unit, start s drawn with seed + s)
    dataset : the data set of `test_data` ("mnist", "fashion"); recorded in site.json with its
        class names, which the pages use where MNIST shows digits
    log : callable for progress lines (None: quiet)

    Returns
    -------
    dict, the site summary (also written to out/site.json)
    """
    started = time.perf_counter()
    seconds, cpu = {}, {}
    say = log or (lambda *_: None)
    cpu_mark = [time.process_time()]

    def lap(key, t):
        seconds[key] = round(time.perf_counter() - t, 2)
        cpu[key] = round(time.process_time() - cpu_mark[0], 2)  # both cores: can exceed wall time
        cpu_mark[0] = time.process_time()
        say(f"[explore] {key}: {seconds[key]:.1f} s ({cpu[key]:.1f} s CPU)")
        return time.perf_counter()

    x_test, y_test = test_data
    x, y = to_input(np.asarray(x_test)), np.asarray(y_test).astype(int)
    info = get_dataset(dataset)
    if len(set(y.tolist())) < info.num_classes:
        raise UserError(f"the test data must hold images of every {info.class_noun} "
                        f"0-{info.num_classes - 1}; check --data/--limit")
    net = describe(model, num_classes=info.num_classes)
    layers = {i.name: i.channels for i in net.units}  # units per unit layer
    t = time.perf_counter()
    acts = C.scan(model, x)
    stats = {i.name: C.unit_statistics(acts[i.name], y, relu=i.activation == "relu",
                                       classes=info.num_classes) for i in net.units}
    t = lap("activations and statistics", t)
    concepts = unit_concepts({i.name: acts[i.name] for i in net.units}, x, info.name)
    t = lap("concept correlations", t)
    causal = causal_effects(model, x, y)
    t = lap("causal effects", t)
    circuit = strongest_links(C.weights_of(model), net,
                              {layer: s["class_mean"] for layer, s in stats.items()})
    config = OIPConfig(steps=steps, precision=precision)
    oips = {}
    for layer, size in layers.items():
        oips[layer] = C.layer_oips(model, layer, C.objective_maximum(acts, layer), starts,
                                   config, seed)
        t = lap(f"OIPs {layer} ({size} x {starts})", t)
    peaks = C.scan(model, np.concatenate([o["images"].reshape(-1, 28, 28, 1) for o in oips.values()]))
    oip_peaks, begin = {}, 0
    for layer, size in layers.items():
        n = starts * size
        block = peaks[layer][begin:begin + n].reshape(starts, size, size)
        oip_peaks[layer] = np.diagonal(block, axis1=1, axis2=2)  # OIP (s, u) seen by unit u
        begin += n
    units = unit_records(net, acts, stats, causal, circuit, oips, oip_peaks, y, concepts)
    check = oip_check(oips, stats)
    logits = acts[net.output_layer.name]
    site = {
        "generator": GENERATOR,
        "model": {"file": str(model_path) if model_path else "(in memory)",
                  "sha256": sha256_file(model_path) if model_path else ""},
        "dataset": info.name, "class_names": list(info.class_names),
        "data": data_source, "test_images": int(len(y)),
        "test_accuracy": _g((logits.argmax(axis=1) == y).mean(), 6),
        "per_class_accuracy": _gl(causal["base_accuracy"], 6),
        "oip_settings": {"steps": steps, "starts": starts, "seed": seed, "lr": config.lr,
                         "jitter": config.jitter,
                         "precision": oips[net.units[0].name]["precision"]},
        "oip_check": check,
        "layers": {i.name: {"units": i.channels,
                            "shape": list(i.output_shape),
                            "receptive_field": (i.receptive_field if i.kind == "conv"
                                                else net.input_shape[0]),
                            "dead": int(stats[i.name]["dead"].sum()),
                            "mean_selectivity": _g(stats[i.name]["selectivity"].mean(), 4)}
                   for i in net.units},
        "seconds": seconds, "cpu_seconds": cpu,
    }
    table = render_table(net)
    render.write_pages(out, site, units, {layer: o["images"] for layer, o in oips.items()}, x[..., 0],
                      table)
    write_attribution_strips(out, unit_attribution.unit_attributions(model, units, x), x, units)
    t = lap("pages and pictures", t)  # from the end of the OIPs: per-unit numbers included
    write_draw(out, model, x_test, y, dataset, unit_pages={u["layer"] for u in units},
               page=lambda title, body: render._page(title, body, table, "draw"))
    lap("draw page", t)
    site["seconds"]["total"] = round(time.perf_counter() - started, 2)
    site["cpu_seconds"]["total"] = round(sum(cpu.values()), 2)
    render.write_summary(out, site, table)
    return site


def render_table(net) -> dict:
    """What the pages say about each unit layer: {name: {"role": "conv" | "dense" | "output",
    "kind": "Conv2D 3x3, ReLU (after 2x2 max-pool)", "in_measure", "out_measure", "kernel"}}."""
    words = {"max_pool": "max-pool", "avg_pool": "average pool", "batch_norm": "batch norm",
             "global_avg_pool": "global average pool", "global_max_pool": "global max pool"}
    acts = {"relu": "ReLU"}
    table = {}
    for i in net.units:
        role = "output" if i is net.output_layer else i.kind
        below = net.below(i.name)
        between = net.between(below.name, i.name)[:-1] if below else net.layers[:i.index]
        after = [("x".join(map(str, b.kernel_size)) + " " if b.kernel_size else "") + words[b.kind]
                 for b in between if b.kind in words]
        if role == "output":
            act = i.activation + " (logits shown)"
        else:
            act = acts.get(i.activation, i.activation)
        if i.kind == "conv":
            kind = f"Conv2D {'x'.join(map(str, i.kernel_size))}"
            kind += f" stride {i.strides[0]}" if i.strides[0] > 1 else ""
            kind += ", 'same' padding" if i.padding == "same" else ""
            kind += f", {act}"
        else:
            kind = f"Dense, {act}"
        kind += f" (after {', '.join(after)})" if after else ""
        above = net.above(i.name)
        table[i.name] = {
            "role": role, "kind": kind, "units": i.channels,
            "in_measure": (("drive" if role == "output" else "weight") if signed(net, i.name)
                           else "weight norm"),
            "out_measure": "weight" if above and signed(net, above.name) else "weight norm",
            "kernel": "x".join(map(str, i.kernel_size)) if i.kernel_size else None}
    return table


def write_attribution_strips(out, attributions: dict, x: np.ndarray, units: list) -> None:
    """img/<unit>-attribution.png: the top images' maps in a row (red drives the unit up, blue
    down, over the image in grey), at native resolution with 1-px gaps, like the other strips.

    Parameters
    ----------
    out : the site's folder; attributions : {unit name: (k, H, W) maps}, as
    `analysis.attribution.units.unit_attributions` returns them; x : the test images
    (N, H, W, 1) in [0, 1]; units : the unit records (name, top: [{"index": test index}]).

    Returns
    -------
    None (one PNG per unit in `attributions`).
    """
    from analysis.pictures import overlay, save_png, tile_row

    by_name = {u["name"]: u for u in units}
    for name, maps in attributions.items():
        tiles = [overlay(x[t["index"]][..., 0], m) for t, m in zip(by_name[name]["top"], maps)]
        save_png(tile_row(tiles, gap=1), f"{out}/img/{name}-attribution.png")
