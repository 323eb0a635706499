"""The explorer's numbers: arrays in, arrays out, nothing written.

Every unit of the network is one of 304: the 32 + 64 + 128 maps of `conv_1`, `conv_2`,
`conv_3`, the 70 units of `dense_1` and the 10 output units.

* `scan`: every unit's activation on every image. A map's activation on an image is its
  *peak*, the largest value over its positions (and where that is); a dense unit's is its value;
  an output unit's is its logit (pre-softmax), which unlike the probability is not squeezed
  into [0, 1] by the other units.
* `unit_statistics`: per unit the class distribution, preferred class, selectivity index, one-
  vs-rest ROC AUC, dead/alive, the 9 most exciting test images and the 9 images of the
  preferred class that excite it least.
* `causal_effects`: per unit the per-class change in accuracy and in mean true-class probability
  when that unit alone is zeroed. Zeroing is done where it is cheap: the change it makes to the
  next layer's pre-activation is subtracted (for a conv map, a one-channel convolution of the
  pooled map with its slice of the next kernel), and only the rest of the network is run.
* `layer_oips`: the batched OIP ascent of `analysis.oip` with several start images per unit.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy.stats import rankdata

from analysis.oip.ascent import Ascent, OIPConfig
from analysis.oip.param import start_images
from mnist_cnn.model import sub_model
from mnist_cnn.reference import layer_geometry, receptive_box, receptive_fields

LAYERS = ("conv_1", "conv_2", "conv_3", "dense_1", "output")
SIZES = {"conv_1": 32, "conv_2": 64, "conv_3": 128, "dense_1": 70, "output": 10}
CONV = ("conv_1", "conv_2", "conv_3")
BELOW = {"conv_2": "conv_1", "conv_3": "conv_2", "dense_1": "conv_3", "output": "dense_1"}
ABOVE = {below: layer for layer, below in BELOW.items()}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP = 9  # test images shown per unit


def unit_names() -> list:
    """All 304 unit names in network order: conv_1-0 ... output-9."""
    return [f"{layer}-{i}" for layer in LAYERS for i in range(SIZES[layer])]


def weights_of(model) -> dict:
    """{layer: (kernel, bias)} as float32 NumPy arrays, for every conv and dense layer."""
    return {name: tuple(np.asarray(w, np.float32) for w in model.get_layer(name).get_weights())
            for name in LAYERS}


# ---------------------------------------------------------------------------------------------
# Activations of every unit on a set of images.

def _activation_fn(model):
    cut = sub_model(model, ["conv_1", "conv_2", "conv_3", "dense_1"])
    w_out, b_out = (tf.constant(w) for w in weights_of(model)["output"])

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def forward(x):
        maps = cut(x, training=False)
        out = {}
        for name, m in zip(CONV, maps[:3]):
            flat = tf.reshape(m, [tf.shape(m)[0], -1, m.shape[-1]])
            out[name] = (tf.reduce_max(flat, axis=1), tf.argmax(flat, axis=1, output_type=tf.int32),
                         tf.reduce_mean(flat, axis=1))
        out["dense_1"] = maps[3]
        out["output"] = tf.matmul(maps[3], w_out) + b_out  # the logits
        return out
    return forward


def scan(model, x, batch: int = 1000) -> dict:
    """Every unit's activation on every image.

    Parameters
    ----------
    model : keras.Model (float32, `load_trained`)
    x : float32 (N, 28, 28, 1) in [0, 1]

    Returns
    -------
    dict {layer: float32 (N, C)} (conv: peak over positions; output: logits),
    {"<conv layer>_pos": int32 (N, C)}, the flat index (row * width + col) of each peak, and
    {"<conv layer>_mean": float32 (N, C)}, the map means (the OIP objective).
    """
    forward = _activation_fn(model)
    x = np.asarray(x, np.float32)
    parts = [forward(tf.constant(x[i:i + batch])) for i in range(0, len(x), batch)]
    out = {}
    for layer in LAYERS:
        if layer in CONV:
            out[layer] = np.concatenate([p[layer][0].numpy() for p in parts])
            out[f"{layer}_pos"] = np.concatenate([p[layer][1].numpy() for p in parts])
            out[f"{layer}_mean"] = np.concatenate([p[layer][2].numpy() for p in parts])
        else:
            out[layer] = np.concatenate([p[layer].numpy() for p in parts])
    return out


def geometry(model) -> dict:
    """{conv layer: (receptive field, effective stride, map width)} in input pixels."""
    fields = receptive_fields(layer_geometry(model))
    return {name: (*fields[name], int(model.get_layer(name).output.shape[2])) for name in CONV}


def peak_boxes(geom: tuple, positions) -> list:
    """Input box ((row0, row1), (col0, col1)), half-open, seen by the map unit at each flat
    position (row * width + col); `geom` is one entry of `geometry`."""
    field, stride, width = geom
    return [receptive_box(int(p) // width, int(p) % width, field, stride) for p in positions]


# ---------------------------------------------------------------------------------------------
# Per-unit statistics over the test set.

def selectivity(class_mean: np.ndarray, floor) -> tuple:
    """Preferred class and class-selectivity index of every unit.

    SI = (mu_pref - mu_rest) / (mu_pref + mu_rest - 2 floor), where mu_pref is the mean
    activation on the preferred class (the largest class mean), mu_rest the mean of the other
    nine class means and `floor` the smallest possible activation (0 after a ReLU; for logits
    the smallest on the test set). 0: no class preference, 1: active on one class only.

    Parameters
    ----------
    class_mean : (C, 10)
    floor : float or (C,)

    Returns
    -------
    (preferred (C,) int, si (C,) float); units with no spread at all get si 0.
    """
    preferred = class_mean.argmax(axis=1)
    mu_pref = class_mean.max(axis=1)
    mu_rest = (class_mean.sum(axis=1) - mu_pref) / (class_mean.shape[1] - 1)
    den = mu_pref + mu_rest - 2 * np.asarray(floor, np.float64)
    si = np.divide(mu_pref - mu_rest, den, out=np.zeros_like(mu_pref, np.float64), where=den > 0)
    return preferred, si


def one_vs_rest_auc(act: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC AUC of every unit for every class against the other nine: (N, C) -> (C, 10).

    The probability that a random image of the class activates the unit more than a random
    image of another class, ties counting one half: the Mann-Whitney U of the class divided by
    n_class * n_rest, from one ranking of each unit's activations.
    """
    ranks = rankdata(act, axis=0)  # average ranks for ties
    auc = np.empty((act.shape[1], 10))
    for k in range(10):
        inside = y == k
        n1, n0 = int(inside.sum()), int((~inside).sum())
        u = ranks[inside].sum(axis=0) - n1 * (n1 + 1) / 2
        auc[:, k] = u / max(n1 * n0, 1) if n1 and n0 else 0.5
    return auc


def unit_statistics(act: np.ndarray, y: np.ndarray, relu: bool = True) -> dict:
    """Statistics of the C units of one layer from their activations (N, C) on labelled images.

    Returns
    -------
    dict of arrays: max (C,), active_fraction (C,), dead (C,) bool (zero on every image; only
    for ReLU layers), class_mean (C, 10), class_quantiles (C, 10, 5) at QUANTILES, preferred (C,)
    (-1 when dead), selectivity (C,), auc (C, 10) one-vs-rest per class, top (C, 9) indices of
    the largest activations (ties: lower index first), low (C, 9) indices of the preferred class
    with the smallest activations.
    """
    act = np.asarray(act, np.float32)
    y = np.asarray(y).astype(int)
    classes = range(10)
    class_mean = np.stack([act[y == k].mean(axis=0) for k in classes], axis=1)
    quant = np.stack([np.quantile(act[y == k], QUANTILES, axis=0).T for k in classes], axis=1)
    auc = one_vs_rest_auc(act, y)
    floor = 0.0 if relu else act.min(axis=0)
    preferred, si = selectivity(class_mean.astype(np.float64), floor)
    dead = (act.max(axis=0) <= 0) if relu else np.zeros(act.shape[1], bool)
    preferred = np.where(dead, -1, preferred)
    si = np.where(dead, 0.0, si)
    order = np.argsort(-act, axis=0, kind="stable")  # (N, C), largest first
    low = np.empty((act.shape[1], TOP), np.int64)
    for c in range(act.shape[1]):
        idx = np.flatnonzero(y == max(preferred[c], 0))
        low[c] = idx[np.argsort(act[idx, c], kind="stable")[:TOP]]
    return {"max": act.max(axis=0), "active_fraction": (act > 0).mean(axis=0), "dead": dead,
            "class_mean": class_mean, "class_quantiles": quant, "preferred": preferred,
            "selectivity": si, "auc": auc, "top": order[:TOP].T.copy(), "low": low}


# ---------------------------------------------------------------------------------------------
# Causal effect: zero one unit, run only the rest of the network.

def _causal_fn(model):
    w = {k: tuple(tf.constant(a) for a in v) for k, v in weights_of(model).items()}
    cut = sub_model(model, ["pool_1", "pool_2", "conv_3", "dense_1"])
    (w2, b2), (w3, b3), (wd, bd), (wo, bo) = w["conv_2"], w["conv_3"], w["dense_1"], w["output"]
    wd9 = tf.reshape(wd, [9, 128, 70])  # Flatten of (3, 3, 128): index (row*3 + col)*128 + channel
    w2k = tf.transpose(tf.reshape(w2, [9, 32, 64]), [1, 0, 2])  # (in channel, 3x3 tap, out)
    w3k = tf.transpose(tf.reshape(w3, [9, 64, 128]), [1, 0, 2])

    def from_dense_pre(z):
        return tf.nn.softmax(tf.matmul(tf.nn.relu(z), wo) + bo)

    def from_conv3_pre(z):
        return from_dense_pre(tf.matmul(tf.reshape(tf.nn.relu(z), [-1, 1152]), wd) + bd)

    def sums(p, onehot):
        """(correct, true-class probability) summed per class: (units, 10) each."""
        correct = tf.cast(tf.equal(tf.argmax(p, -1), tf.argmax(onehot, -1)[None]), tf.float32)
        p_true = tf.reduce_sum(p * onehot[None], axis=-1)
        return tf.matmul(correct, onehot), tf.matmul(p_true, onehot)

    def columns(pooled, size):
        """(channels, B*size*size, 9): each channel's 3x3 input patches at the first size x size
        output positions, the k=9 side of a GEMM."""
        cols = tf.stack([pooled[:, i:i + size, j:j + size, :] for i in range(3) for j in range(3)], 3)
        return tf.transpose(tf.reshape(cols, [-1, 9, pooled.shape[-1]]), [2, 0, 1])

    # A map's share of the next convolution is a (positions x 9) @ (9 x outputs) product; one
    # unit at a time keeps every tensor small enough to stay in cache (3-4x faster on 2 cores
    # than one batched product or a depthwise convolution for all units).
    def per_unit(fn, units):
        """fn(c) for c = 0..units-1 in a graph loop (a small graph: traced once, not units times)."""
        return tf.map_fn(fn, tf.range(units), fn_output_signature=tf.float32, parallel_iterations=1)

    def conv_1(p1, onehot):
        # pool_2 (2x2, valid) reads only rows and columns 0-9 of conv_2's 11x11 map
        pre = tf.reshape((tf.nn.conv2d(p1, w2, 1, "VALID") + b2)[:, :10, :10, :], [-1, 64])
        cols = columns(p1, 10)

        def without(c):
            z = tf.reshape(pre - tf.matmul(tf.gather(cols, c), tf.gather(w2k, c)), [-1, 10, 10, 64])
            pooled = tf.nn.relu(tf.nn.max_pool2d(z, 2, 2, "VALID"))  # relu commutes with max
            return from_conv3_pre(tf.nn.conv2d(pooled, w3, 1, "VALID") + b3)
        return sums(per_unit(without, 32), onehot)

    def conv_2(p2, onehot):
        pre = tf.reshape(tf.nn.conv2d(p2, w3, 1, "VALID") + b3, [-1, 128])
        cols = columns(p2, 3)
        return sums(per_unit(lambda c: from_conv3_pre(pre - tf.matmul(tf.gather(cols, c),
                                                                      tf.gather(w3k, c))), 64), onehot)

    def conv_3(c3, onehot):
        pre = tf.matmul(tf.reshape(c3, [-1, 1152]), wd) + bd
        share = tf.einsum("bpc,pcj->cbj", tf.reshape(c3, [-1, 9, 128]), wd9)
        return sums(from_dense_pre(pre[None] - share), onehot)

    def dense_1(d1, logits, onehot):
        share = tf.transpose(d1)[:, :, None] * wo[:, None, :]  # (70, B, 10)
        return sums(tf.nn.softmax(logits[None] - share), onehot)

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32),
                                  tf.TensorSpec([None, 10], tf.float32)])
    def batch(x, onehot):
        p1, p2, c3, d1 = cut(x, training=False)
        logits = tf.matmul(d1, wo) + bo
        keep = 1.0 - tf.eye(10)[:, None, :]  # output unit k: its logit set to 0
        return {"base": sums(tf.nn.softmax(logits)[None], onehot),
                "conv_1": conv_1(p1, onehot), "conv_2": conv_2(p2, onehot),
                "conv_3": conv_3(c3, onehot), "dense_1": dense_1(d1, logits, onehot),
                "output": sums(tf.nn.softmax(logits[None] * keep), onehot)}
    return batch


def causal_effects(model, x, y, batch: int = 500) -> dict:
    """Per-class effect of zeroing each unit alone, on labelled images.

    Zeroing means the unit's output (after its ReLU) is 0 at every position; for an output unit
    its logit is set to 0 before the softmax.

    Returns
    -------
    dict with base_accuracy (10,), base_probability (10,) (mean true-class probability per
    class), count (10,), base_accuracy_all, and per layer {"accuracy": (C, 10),
    "probability": (C, 10), "accuracy_all": (C,), "probability_all": (C,)}: the change
    (ablated - intact) in accuracy and mean true-class probability per class and over all images.
    """
    step = _causal_fn(model)
    x = np.asarray(x, np.float32)
    onehot = np.eye(10, dtype=np.float32)[np.asarray(y).astype(int)]
    total = {}
    for i in range(0, len(x), batch):
        part = step(tf.constant(x[i:i + batch]), tf.constant(onehot[i:i + batch]))
        for key, (correct, p_true) in part.items():
            c, p = total.get(key, (0.0, 0.0))
            total[key] = (c + correct.numpy().astype(np.float64), p + p_true.numpy().astype(np.float64))
    count = onehot.sum(axis=0).astype(np.float64)
    n = max(count.sum(), 1)
    safe = np.maximum(count, 1)
    base_c, base_p = total["base"][0][0], total["base"][1][0]
    out = {"count": count, "base_accuracy": base_c / safe, "base_probability": base_p / safe,
           "base_accuracy_all": base_c.sum() / n, "base_probability_all": base_p.sum() / n}
    for layer in LAYERS:
        c, p = total[layer]
        out[layer] = {"accuracy": (c - base_c) / safe, "probability": (p - base_p) / safe,
                      "accuracy_all": (c.sum(axis=1) - base_c.sum()) / n,
                      "probability_all": (p.sum(axis=1) - base_p.sum()) / n}
    return out


# ---------------------------------------------------------------------------------------------
# OIPs: several start images per unit, one batched ascent per layer.

def pairwise_correlation(images: np.ndarray) -> np.ndarray:
    """Pearson r of every pair of images (S, 28, 28) -> (S, S); constant images give 0."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1)
    r = (flat @ flat.T) / np.maximum(np.outer(norm, norm), 1e-12)
    return np.where(np.outer(norm, norm) > 1e-12, r, 0.0)


def objective_maximum(acts: dict, layer: str) -> np.ndarray:
    """Largest value of the OIP objective (map mean; dense value; logit) over the scanned
    images, per unit: what `analysis.oip.data_maximum` computes, read from a `scan`."""
    return acts[f"{layer}_mean" if layer in CONV else layer].max(axis=0)


def layer_oips(model, layer: str, data_max, starts: int = 5, config: OIPConfig = OIPConfig(),
               seed: int = 0, units=None) -> dict:
    """OIPs of every unit of `layer` (or of `units`) from `starts` start images each, in one
    batched ascent.

    Start s of unit m is `start_images([m], seed + s)`, so start 0 is exactly the start of
    `analysis.oip.compute_oips(..., seed)`; the jitter is seeded by `seed`. A unit's OIPs do
    not depend on which other units share the batch.

    Returns
    -------
    dict with images (S, C, 28, 28), activation (S, C) (the ascent's objective on the
    activation: map mean for conv layers), data_max (C,) (as given: the same objective's largest
    value on the test images, from `objective_maximum`), best (C,) the start with the largest
    activation, agreement (C,) mean pairwise Pearson r of the S images, precision.
    """
    ascent = Ascent(model, layer, config=config)
    units = np.arange(ascent.channels) if units is None else np.asarray(units, np.int64)
    n = len(units)
    start = np.concatenate([start_images(units, seed + s, config.start_mean, config.start_std)
                            for s in range(starts)])
    images, activation = ascent.run(start, np.tile(units, starts), seed=seed, verbose=0)
    images = images.reshape(starts, n, 28, 28)
    activation = activation.reshape(starts, n)
    pairs = np.triu_indices(starts, 1)
    agreement = np.array([pairwise_correlation(images[:, m])[pairs].mean() if starts > 1
                          else np.nan for m in range(n)])
    return {"images": images, "activation": activation, "best": activation.argmax(axis=0),
            "data_max": np.asarray(data_max, np.float32), "agreement": agreement,
            "precision": ascent.precision}
