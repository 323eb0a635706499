"""`run(model, data)`: every concept table for one model (probes, TCAV, units, causal check)."""

from __future__ import annotations

import time

import numpy as np

from analysis.concepts import activations as A
from analysis.concepts.measure import measure_cached, names_for
from analysis.concepts.probes import probe_table, random_copy
from analysis.concepts.tcav import concept_sets, tcav_table
from analysis.concepts.units import causal_check, spearman


def _subset(n: int, size: int, rng) -> np.ndarray:
    return np.sort(rng.choice(n, min(size, n), replace=False))


def tcav_rows(model, x_concepts, values: dict, x_classes, y_classes, classes=None, layers=None,
              per_set: int = 150, per_class: int = 300, permutations: int = 10000,
              seeds=(0, 1, 2)) -> tuple:
    """TCAV rows of `classes` for the concepts of `values` (Holm over all rows).

    Parameters
    ----------
    model : an accepted model; x_concepts : model inputs (N, 28, 28, 1) float32 in [0, 1]
        (`mnist_cnn.data.to_input`) the concept sets are drawn from, with their measurements
        `values` (name -> (N,))
    x_classes, y_classes : test inputs (as x_concepts) and labels; the first `per_class` of
        each class are used
    classes : default every class; layers : default the last conv layer and the hidden dense ones
    per_set, permutations, seeds : as in `tcav.tcav_table`

    Returns
    -------
    (rows, layers): `tcav.tcav_table`'s rows and the layers they are about.
    """
    from mnist_cnn.network import describe

    net = describe(model)
    last = net.last_conv
    layers = list(layers or ([last.name] if last else []) + [d.name for d in net.hidden_dense])
    classes = list(range(net.num_classes) if classes is None else classes)
    test_of = {c: np.flatnonzero(y_classes == c)[:per_class] for c in classes}
    classes = [c for c in classes if len(test_of[c])]  # a small subset may lack a class
    acts = A.layer_outputs(model, layers, x_concepts)
    class_acts = {c: A.layer_outputs(model, layers, x_classes[test_of[c]])
                  for c in classes}
    grads = {layer: {c: A.logit_gradients(model, net, layer, class_acts[c][layer], c)
                     for c in classes} for layer in layers}
    flat = {n: a.reshape(len(a), -1) for n, a in acts.items()}
    rows = tcav_table(flat, concept_sets(values, list(values)), grads, per_set, permutations,
                      seeds)
    return rows, layers


def run(model, data, dataset: str = "mnist", images: int | None = None, probe_train: int = 5000,
        probe_test: int = 2000,
        concept_pool: int = 5000, per_set: int = 150, per_class: int = 300,
        permutations: int = 10000, seeds=(0, 1, 2), classes=None, tcav_layers=None, k: int = 0,
        draws: int = 10, cache=None, measurements=None) -> dict:
    """All concept tables of a model.

    Parameters
    ----------
    model : a trained accepted model; data : ((x_train, y_train), (x_test, y_test)) uint8
    dataset : "mnist" (all measurements) or "fashion" (area, width, height, thickness)
    images : at most this many training and this many test images are used at all (a fixed
        random subset of each, measured and cached as such; default all: tests pass a few hundred)
    probe_train, probe_test : images for the probes; concept_pool : training images the
        concept sets are drawn from; per_set : images per side of a concept; per_class : test
        images per class for the TCAV scores; permutations, seeds : the TCAV null and spread
    classes : classes for TCAV (default all); tcav_layers : default the last conv layer and the
        hidden dense layers; k : units zeroed in the causal check (default an eighth of the
        layer's units); draws : random draws; cache : measurement cache folder
    measurements : precomputed ({train}, {test}) measurement dicts (tests), else measured/cached

    Returns
    -------
    dict: names, skipped, probes, tcav, units (layer -> measurement -> rho list), causal (or
    None without loops), settings, seconds (per stage), examples (measurement -> lowest and
    highest test indices, into the test subset when `images` is given), test_indices (that
    subset's indices into x_test, or None).
    """
    from mnist_cnn.data import to_input
    from mnist_cnn.network import describe

    t0 = time.perf_counter()
    seconds = {}
    (x_tr, y_tr), (x_te, y_te) = data
    keep_te = None
    if images is not None:
        pick = np.random.default_rng(1)
        keep_tr, keep_te = _subset(len(x_tr), images, pick), _subset(len(x_te), images, pick)
        x_tr, y_tr, x_te, y_te = x_tr[keep_tr], y_tr[keep_tr], x_te[keep_te], y_te[keep_te]
        if measurements is not None:
            measurements = ({n: v[keep_tr] for n, v in measurements[0].items()},
                            {n: v[keep_te] for n, v in measurements[1].items()})
    net = describe(model)
    names = names_for(dataset)
    if measurements is None:
        m_tr, _ = measure_cached(x_tr, names, cache)
        m_te, _ = measure_cached(x_te, names, cache)
    else:
        m_tr, m_te = ({n: m[n] for n in names} for m in measurements)
    seconds["measure"] = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    layers = A.probe_layers(net)

    # Probes, trained and random weights.
    t = time.perf_counter()
    i_tr, i_te = _subset(len(x_tr), probe_train, rng), _subset(len(x_te), probe_test, rng)
    rand = random_copy(model, 0)
    feats = {}
    for key, mdl in (("trained", model), ("random", rand)):
        for split, idx, x in (("train", i_tr, x_tr), ("test", i_te, x_te)):
            outs = A.layer_outputs(mdl, layers, to_input(x[idx]))
            feats[key, split] = {n: A.pooled(o) for n, o in outs.items()}
    probes = probe_table(feats["trained", "train"], feats["trained", "test"],
                         feats["random", "train"], feats["random", "test"],
                         {n: m_tr[n][i_tr] for n in names}, {n: m_te[n][i_te] for n in names})
    seconds["probes"] = time.perf_counter() - t

    # TCAV.
    t = time.perf_counter()
    pool = _subset(len(x_tr), concept_pool, rng)
    test_inputs = to_input(x_te)  # (N, 28, 28, 1) float32, for TCAV and the units
    tcav, tcav_layers = tcav_rows(model, to_input(x_tr[pool]), {n: m_tr[n][pool] for n in names},
                                  test_inputs, y_te, classes, tcav_layers, per_set, per_class,
                                  permutations, seeds)
    seconds["tcav"] = time.perf_counter() - t

    # Units and the causal check on the whole test set.
    t = time.perf_counter()
    last = net.last_conv
    unit_layers = [i.name for i in net.units[:-1]]
    outs = A.layer_outputs(model, unit_layers, test_inputs)
    units = {n: {k_: v.tolist() for k_, v in spearman(A.peaks(o), m_te).items()}
             for n, o in outs.items()}
    causal = None
    if last is not None and "loops" in names:
        corr = np.array(units[last.name]["loops"])
        k = k or max(1, last.channels // 8)
        causal = causal_check(model, net, last.name, outs[last.name], y_te, corr, k, draws)
    seconds["units_causal"] = time.perf_counter() - t
    order = {n: np.argsort(m_te[n], kind="stable") for n in names}
    examples = {n: {"lowest": o[:8].tolist(), "highest": o[::-1][:8].tolist(),
                    "values_low": m_te[n][o[:8]].tolist(), "values_high": m_te[n][o[::-1][:8]].tolist()}
                for n, o in order.items()}
    seconds["total"] = time.perf_counter() - t0
    skipped = [n for n in names_for("mnist") if n not in names]
    return {"names": list(names), "skipped": skipped, "probes": probes, "tcav": tcav,
            "units": units, "causal": causal, "examples": examples, "seconds": seconds,
            "test_indices": None if keep_te is None else keep_te.tolist(),
            "settings": {"probe_train": len(i_tr), "probe_test": len(i_te), "concept_pool": len(pool),
                         "per_set": per_set, "per_class": per_class, "permutations": permutations,
                         "seeds": list(seeds), "tcav_layers": tcav_layers, "k": k,
                         "draws": draws, "dataset": dataset, "images": images,
                         "train_images": len(x_tr), "test_images": len(x_te)}}
