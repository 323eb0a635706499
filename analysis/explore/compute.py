"""The explorer's numbers: arrays in, arrays out, nothing written.

Every unit of the network is one map of a conv layer or one unit of a dense layer, read from the
model (`mnist_cnn.network.describe`: `net.units`); the series' network has 304: the 32 + 64 +
128 maps of `conv_1`, `conv_2`, `conv_3`, the 70 units of `dense_1` and the 10 output units.

* `scan`: every unit's activation on every image. A map's activation on an image is its
  *peak*, the largest value over its positions (and where that is); a dense unit's is its value;
  an output unit's is its logit (pre-softmax), which unlike the probability is not squeezed
  into [0, 1] by the other units.
* `unit_statistics`: per unit the class distribution, preferred class, selectivity index, one-
  vs-rest ROC AUC, dead/alive, the 9 most exciting test images and the 9 images of the
  preferred class that excite it least.
* `causal_effects` (in `causal`): per unit the per-class change in accuracy and in mean
  true-class probability when that unit alone is zeroed.
* `layer_oips`: the batched OIP ascent of `analysis.oip` with several start images per unit.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy.stats import rankdata

from analysis.oip.ascent import Ascent, OIPConfig
from analysis.oip.compute import objective_maximum  # noqa: F401  (the explorer's name for it)
from analysis.oip.param import start_images
from mnist_cnn.model import sub_model
from mnist_cnn.network import describe

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP = 9  # test images shown per unit


def unit_names(net) -> list:
    """All unit names in network order: conv_1-0 ... output-9 for the series' network."""
    return [f"{i.name}-{u}" for i in net.units for u in range(i.channels)]


def weights_of(model) -> dict:
    """{layer: (kernel, bias)} as float32 NumPy arrays, for every conv and dense layer."""
    return {i.name: tuple(np.asarray(w, np.float32) for w in model.get_layer(i.name).get_weights())
            for i in describe(model).units}


def logit_cut(model, net):
    """(cut from the input to every hidden unit layer and to what the output Dense reads, the
    names of those outputs, the name of what the output Dense reads, its kernel and bias as
    constants): the logits are `outputs[feeds] @ kernel + bias` whatever the output activation."""
    hidden = [i.name for i in net.units if i is not net.output_layer]
    feeds = net.layers[net.output_layer.index - 1].name
    names = hidden + ([] if feeds in hidden else [feeds])
    kernel, bias = (tf.constant(np.asarray(v, np.float32))
                    for v in model.get_layer(net.output_layer.name).get_weights())
    return sub_model(model, names), names, feeds, kernel, bias


def outputs_by_name(cut, names, x) -> dict:
    """{name: tensor} of a `logit_cut` cut on x (Keras returns a bare tensor for one output)."""
    outs = cut(x, training=False)
    return dict(zip(names, outs if isinstance(outs, (list, tuple)) else [outs]))


# ---------------------------------------------------------------------------------------------
# Activations of every unit on a set of images.

def _activation_fn(model):
    net = describe(model)
    hidden = [i for i in net.units if i is not net.output_layer]
    cut, names, feeds, w_out, b_out = logit_cut(model, net)

    @tf.function(input_signature=[tf.TensorSpec([None, *net.input_shape], tf.float32)],
                 autograph=False)  # plain TensorFlow: no source conversion
    def forward(x):
        by_name = outputs_by_name(cut, names, x)
        out = {}
        for info in hidden:
            m = by_name[info.name]
            if info.kind == "conv":
                flat = tf.reshape(m, [tf.shape(m)[0], -1, m.shape[-1]])
                out[info.name] = (tf.reduce_max(flat, axis=1),
                                  tf.argmax(flat, axis=1, output_type=tf.int32),
                                  tf.reduce_mean(flat, axis=1))
            else:
                out[info.name] = m
        out[net.output_layer.name] = tf.matmul(by_name[feeds], w_out) + b_out  # the logits
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
    net = describe(model)
    forward = _activation_fn(model)
    x = np.asarray(x, np.float32)
    parts = [forward(tf.constant(x[i:i + batch])) for i in range(0, len(x), batch)]
    out = {}
    for info in net.units:
        layer = info.name
        if info.kind == "conv":
            out[layer] = np.concatenate([p[layer][0].numpy() for p in parts])
            out[f"{layer}_pos"] = np.concatenate([p[layer][1].numpy() for p in parts])
            out[f"{layer}_mean"] = np.concatenate([p[layer][2].numpy() for p in parts])
        else:
            out[layer] = np.concatenate([p[layer].numpy() for p in parts])
    return out


def peak_boxes(info, positions) -> list:
    """Input box ((row0, row1), (col0, col1)), half-open and clipped to the image, seen by the
    map unit at each flat position (row * width + col) of conv layer `info` (a LayerInfo)."""
    width = info.output_shape[1]
    return [info.box(int(p) // width, int(p) % width) for p in positions]


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
    class_mean : (C, K), K classes
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


def one_vs_rest_auc(act: np.ndarray, y: np.ndarray, classes: int | None = None) -> np.ndarray:
    """ROC AUC of every unit for every class against the others: (N, C) -> (C, K).

    The probability that a random image of the class activates the unit more than a random
    image of another class, ties counting one half: the Mann-Whitney U of the class divided by
    n_class * n_rest, from one ranking of each unit's activations.
    """
    classes = classes or int(np.max(y)) + 1
    ranks = rankdata(act, axis=0)  # average ranks for ties
    auc = np.empty((act.shape[1], classes))
    for k in range(classes):
        inside = y == k
        n1, n0 = int(inside.sum()), int((~inside).sum())
        u = ranks[inside].sum(axis=0) - n1 * (n1 + 1) / 2
        auc[:, k] = u / max(n1 * n0, 1) if n1 and n0 else 0.5
    return auc


def unit_statistics(act: np.ndarray, y: np.ndarray, relu: bool = True,
                    classes: int | None = None) -> dict:
    """Statistics of the C units of one layer from their activations (N, C) on labelled images
    of `classes` classes (default: the largest label + 1).

    Returns
    -------
    dict of arrays: max (C,), active_fraction (C,), dead (C,) bool (zero on every image; only
    for ReLU layers), class_mean (C, K), class_quantiles (C, K, 5) at QUANTILES, preferred (C,)
    (-1 when dead), selectivity (C,), auc (C, K) one-vs-rest per class, top (C, 9) indices of
    the largest activations (ties: lower index first), low (C, 9) indices of the preferred class
    with the smallest activations.
    """
    act = np.asarray(act, np.float32)
    y = np.asarray(y).astype(int)
    labels = range(classes or int(y.max()) + 1)
    class_mean = np.stack([act[y == k].mean(axis=0) for k in labels], axis=1)
    quant = np.stack([np.quantile(act[y == k], QUANTILES, axis=0).T for k in labels], axis=1)
    auc = one_vs_rest_auc(act, y, len(labels))
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
# OIPs: several start images per unit, one batched ascent per layer.

def pairwise_correlation(images: np.ndarray) -> np.ndarray:
    """Pearson r of every pair of images (S, 28, 28) -> (S, S); constant images give 0."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(flat, axis=1)
    r = (flat @ flat.T) / np.maximum(np.outer(norm, norm), 1e-12)
    return np.where(np.outer(norm, norm) > 1e-12, r, 0.0)


def layer_oips(model, layer: str, data_max, starts: int = 5, config: OIPConfig = OIPConfig(),
               seed: int = 0, units=None, retry: bool = True) -> dict:
    """OIPs of every unit of `layer` (or of `units`) from `starts` start images each, in one
    batched ascent, and a second set of starts for the units the first left short.

    Start s of unit m is `start_images([m], seed + s)`, so start 0 is exactly the start of
    `analysis.oip.compute_oips(..., seed)`; the jitter is seeded by `seed`. A unit's OIPs do
    not depend on which other units share the batch. With `retry`, a live unit (data maximum
    above 0) whose best OIP is not above its data maximum gets `starts` new starts (seeds
    `seed + starts` ...) and keeps those if their best is higher: a nearly dead unit's ascent
    often stalls from most starts (a conv_3 map whose largest test activation was 0.033 beat
    it from 1 start in 8).

    Returns
    -------
    dict with images (S, C, 28, 28), activation (S, C) (the ascent's objective on the
    activation: map mean for conv layers), data_max (C,) (as given: the same objective's largest
    value on the test images, from `objective_maximum`), best (C,) the start with the largest
    activation, agreement (C,) mean pairwise Pearson r of the S images, retried (C,) bool (the
    unit's starts are the second set), precision.
    """
    ascent = Ascent(model, layer, config=config)
    units = np.arange(ascent.channels) if units is None else np.asarray(units, np.int64)
    data_max = np.asarray(data_max, np.float32)
    images, activation = _oips_from(ascent, units, starts, seed, seed, config)
    retried = np.zeros(len(units), bool)
    short = np.flatnonzero((data_max > 0) & (activation.max(axis=0) <= data_max)) if retry else []
    if len(short):
        again_images, again = _oips_from(ascent, units[short], starts, seed + starts, seed, config)
        better = again.max(axis=0) > activation[:, short].max(axis=0)
        keep = short[better]
        images[:, keep], activation[:, keep] = again_images[:, better], again[:, better]
        retried[keep] = True
    pairs = np.triu_indices(starts, 1)
    agreement = np.array([pairwise_correlation(images[:, m])[pairs].mean() if starts > 1
                          else np.nan for m in range(len(units))])
    return {"images": images, "activation": activation, "best": activation.argmax(axis=0),
            "data_max": data_max, "agreement": agreement, "retried": retried,
            "precision": ascent.precision}


def _oips_from(ascent, units, starts, first_seed, jitter_seed, config):
    """(images (S, N, 28, 28), activation (S, N)) of `units` from the starts `first_seed` ...
    `first_seed + starts - 1`, the jitter seeded by `jitter_seed`."""
    start = np.concatenate([start_images(units, first_seed + s, config.start_mean, config.start_std)
                            for s in range(starts)])
    images, activation = ascent.run(start, np.tile(units, starts), seed=jitter_seed, verbose=0)
    return images.reshape(starts, len(units), 28, 28), activation.reshape(starts, len(units))
