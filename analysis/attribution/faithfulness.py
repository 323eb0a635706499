"""Is an attribution map about the model? Two measurements, for every method.

* Deletion and insertion (Petsiuk et al. 2018, RISE): pixels are set to black (deleted) or
  revealed on a black field (inserted) in the order of the map, most important first, in
  `steps` equal slices; the area under the target's probability curve (mean over the steps,
  0-1) is the score. A faithful map deletes the evidence first (low deletion AUC) and reveals
  it first (high insertion AUC). Each method is compared image by image with two orders that
  know nothing of the model: a random order, and a Sobel edge map of the image, so a method
  that only finds the strokes' edges shows it.
* The model-randomisation check (Adebayo et al. 2018): the network's weighted layers are
  re-initialised from the top down (their own initialisers, biases zero), one more at each step,
  and the Spearman rank correlation of each method's map (its absolute value) with the trained
  model's is measured on the image's ink pixels (and, reported beside it, on all pixels). A
  method whose map still correlates above `RANDOMISATION_PASS` with the trained one after every
  layer is re-initialised is marked as not explaining the model.
  The Sobel map, which ignores the model, is measured too as the check's own control (1.0).

The probability of a class target is the model's softmax; for "c rather than d" it is
sigmoid(logit_c - logit_d), the probability of c between the two.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import ndimage
from scipy.stats import rankdata

RANDOMISATION_PASS = 0.5  # rank correlation with the trained map, after every layer is re-initialised


def sobel_map(x) -> np.ndarray:
    """Edge strength |Sobel| of each image (N, H, W, C) -> (N, H, W): the model-free control."""
    x = np.asarray(x, np.float64)[..., 0]
    # ndimage.sobel smooths along every axis but the derivative's, the batch axis included,
    # which blends neighbouring images; a (1, 3, 3) kernel filters each image on its own.
    derivative, smooth = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
    ky = np.outer(derivative, smooth)[None]  # (1, 3, 3): d/dy, smoothed along x
    gy = ndimage.correlate(x, ky, mode="constant")
    gx = ndimage.correlate(x, ky.transpose(0, 2, 1), mode="constant")
    return np.hypot(gx, gy).astype(np.float32)


def random_map(shape, seed: int = 0) -> np.ndarray:
    """A random order for each image (N, H, W)."""
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def probability(attributor, x, w) -> np.ndarray:
    """The target's probability (N,): softmax for a one-hot `w`, sigmoid of the logit
    difference for an e_c - e_d row."""
    logits = attributor.logits(x)
    pos, neg = np.argmax(w, axis=1), np.argmin(w, axis=1)
    pair = w[np.arange(len(w)), neg] < 0
    soft = tf.nn.softmax(logits).numpy()[np.arange(len(w)), pos]
    diff = logits[np.arange(len(w)), pos] - logits[np.arange(len(w)), neg]
    return np.where(pair, 1.0 / (1.0 + np.exp(-diff)), soft)


def _order(maps, seed):
    """Pixel indices of each map, largest first; ties (flat backgrounds) broken at random, so no
    method is helped or hurt by scanning the field in reading order."""
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    jitter = np.random.default_rng(seed).random(flat.shape) * 1e-9 * (np.abs(flat).max() + 1e-30)
    return np.argsort(-(flat + jitter), axis=1, kind="stable")


def curves(attributor, x, w, maps, steps: int = 16, seed: int = 0) -> dict:
    """Deletion and insertion curves of one set of maps.

    Parameters
    ----------
    attributor : `analysis.attribution.methods.Attributor` (the model).
    x : (N, H, W, C) images; w : (N, classes) target rows; maps : (N, H, W).
    steps : slices the pixels are removed or revealed in.

    Returns
    -------
    dict: "deletion", "insertion" (N, steps + 1) probabilities from 0 to all pixels,
    "deletion_auc", "insertion_auc" (N,) their means (trapezoid over [0, 1]).
    """
    x = np.asarray(x, np.float32)
    n, pixels = len(x), int(np.prod(x.shape[1:3]))
    order = _order(np.asarray(maps), seed)
    counts = np.round(np.linspace(0, pixels, steps + 1)).astype(int)
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(pixels)[None, :]  # rank of every pixel
    out = {}
    for kind in ("deletion", "insertion"):
        # every step of every image in one batch: (steps + 1) N images, a few compiled calls
        top = rank[None] < counts[:, None, None]  # (steps + 1, N, pixels): the first `count`
        keep = ~top if kind == "deletion" else top
        batch = (x[None] * keep.reshape(len(counts), n, *x.shape[1:3], 1)).reshape(-1, *x.shape[1:])
        probs = probability(attributor, batch, np.tile(w, (len(counts), 1)))
        probs = probs.reshape(len(counts), n).T.astype(np.float32)
        out[kind] = probs
        out[f"{kind}_auc"] = (probs[:, :-1] + probs[:, 1:]).mean(axis=1) / 2
    return out


def deletion_insertion(attributor, x, w, maps: dict, steps: int = 16, seed: int = 0) -> dict:
    """Curves of every method in `maps` and of the random and Sobel orders, with the per-image
    comparisons.

    Returns
    -------
    dict: {"curves": {name: curves()}, "summary": {method: {deletion_auc, insertion_auc (means),
    beats_random_deletion, beats_random_insertion, beats_sobel_deletion, beats_sobel_insertion
    (fractions of the images), beats_random, beats_sobel (both curves better on average)}}}
    """
    controls = {"random": random_map(np.asarray(x).shape[:3], seed), "sobel": sobel_map(x)}
    all_curves = {name: curves(attributor, x, w, m, steps, seed) for name, m in
                  {**maps, **controls}.items()}
    summary = {}
    for name in [*maps, *controls]:
        c = all_curves[name]
        row = {"deletion_auc": float(c["deletion_auc"].mean()),
               "insertion_auc": float(c["insertion_auc"].mean())}
        for other in ("random", "sobel"):
            if name == other:
                continue
            o = all_curves[other]
            row[f"beats_{other}_deletion"] = float((c["deletion_auc"] < o["deletion_auc"]).mean())
            row[f"beats_{other}_insertion"] = float((c["insertion_auc"] > o["insertion_auc"]).mean())
            row[f"beats_{other}"] = bool(row["deletion_auc"] < o["deletion_auc"].mean()
                                         and row["insertion_auc"] > o["insertion_auc"].mean())
        summary[name] = row
    return {"curves": all_curves, "summary": summary}


def spearman(a, b, mask=None) -> np.ndarray:
    """Rank correlation of each pair of maps (N, ...) -> (N,), over the pixels where `mask`
    (N, ...) is true (default all); 0 where a map is constant there (it ranks nothing)."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    mask = np.ones(a.shape, bool) if mask is None else np.asarray(mask).reshape(a.shape)
    out = np.zeros(len(a))
    for i in range(len(a)):
        ra, rb = rankdata(a[i][mask[i]]), rankdata(b[i][mask[i]])
        ra, rb = ra - ra.mean(), rb - rb.mean()
        den = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
        out[i] = (ra * rb).sum() / den if den > 0 else 0.0
    return out


def weighted_layers(attributor) -> list:
    """The attribution network's layers with a kernel (conv, dense, the logit copy), bottom up."""
    return [layer for layer in attributor.net.layers if getattr(layer, "kernel", None) is not None]


def randomisation_check(attributor, x, w, maps: dict, seed: int = 0) -> dict:
    """Cascading model randomisation, top layer first; the weights are restored afterwards.

    Parameters
    ----------
    attributor : Attributor of the trained model (its variables are changed, then restored).
    x, w : images and target rows; maps : {method: trained maps (N, H, W)} of those images.

    Returns
    -------
    dict: "layers" (the re-initialised layer added at each step, top first), "correlation"
    {method: [mean Spearman of |map| over the ink pixels after each step]}, "correlation_all"
    (the same over all pixels), "passes" {method: bool}: the ink correlation is below
    RANDOMISATION_PASS once every layer is re-initialised.

    Why the ink: a map of a x-input method (gradient x input, SmoothGrad, integrated
    gradients) is zero wherever the image is black, for any model, so over all pixels its rank
    correlation is high whatever the weights (that number is reported: how much of a map's
    look is the digit's outline); the question "which of the drawn pixels made it say c" is
    decided on the ink. The Sobel map, independent of the model, scores 1.0 on both.
    """
    layers = weighted_layers(attributor)[::-1]
    saved = [v.numpy() for v in attributor.net.weights]
    keras_seed = np.random.default_rng(seed).integers(1 << 30)
    trained = {name: np.abs(m) for name, m in maps.items()}
    edges = sobel_map(x)
    ink = np.asarray(x)[..., 0] > 0
    correlation = {name: [] for name in [*maps, "sobel"]}
    correlation_all = {name: [] for name in [*maps, "sobel"]}
    trained["sobel"] = edges  # the control: no model in it, the same map after every layer
    try:
        for i, layer in enumerate(layers):
            _reinitialise(layer, int(keras_seed) + i)
            now, _ = attributor.all_maps(x, w, list(maps), with_check=False)
            now["sobel"] = edges
            for name in correlation:
                new = np.abs(now[name])
                correlation[name].append(float(spearman(trained[name], new, ink).mean()))
                correlation_all[name].append(float(spearman(trained[name], new).mean()))
    finally:
        for v, value in zip(attributor.net.weights, saved):
            v.assign(value)
    return {"layers": [layer.name for layer in layers], "correlation": correlation,
            "correlation_all": correlation_all, "threshold": RANDOMISATION_PASS,
            "passes": {name: bool(c[-1] < RANDOMISATION_PASS) for name, c in correlation.items()}}


def _reinitialise(layer, seed: int) -> None:
    """The layer's kernel drawn afresh from its own initialiser (seeded), its bias zero."""
    import keras

    config = layer.get_config()["kernel_initializer"]
    if isinstance(config, dict) and "seed" in config.get("config", {}):
        config = {**config, "config": {**config["config"], "seed": seed}}
    init = keras.initializers.get(config)
    layer.kernel.assign(init(tuple(layer.kernel.shape)))
    if getattr(layer, "bias", None) is not None:
        layer.bias.assign(np.zeros(tuple(layer.bias.shape), np.float32))
