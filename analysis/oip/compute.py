"""Whole layers of OIPs, and the two relatives the digit report shows (arrays in, arrays out).

`compute_oips` optimises the maps of one layer together and compares each OIP with the largest
activation of its map on real images (`data_maximum`); `oip_quality` counts how many beat it.
`class_images` maximises the logit of a digit (the "class image"); `carve` nudges a real image
for a few steps towards what one map reacts to ("pattern carving", the series' small DeepDream).
"""

from __future__ import annotations

import time

import numpy as np

from analysis.oip.ascent import Ascent, OIPConfig
from analysis.oip.param import start_images


def data_maximum(ascent: Ascent, x, maps, batch_size: int = 1000) -> np.ndarray:
    """Largest value of the objective (on the activation) over real images, per map.

    Parameters
    ----------
    ascent : Ascent, whose cut model and objective are used.
    x : float32 array (M, 28, 28[, 1]) in [0, 1], e.g. the test set.
    maps : int sequence (N,)

    Returns
    -------
    float32 array (N,): for each map the maximum over the M images (0 = dead on these images
    for ReLU layers).
    """
    x = np.asarray(x, np.float32).reshape(-1, 28, 28)
    best = np.full(ascent.channels, -np.inf, np.float32)
    for i in range(0, len(x), batch_size):
        values = ascent.all_maps(x[i:i + batch_size])
        best = np.maximum(best, values.max(axis=0))
    return best[np.asarray(maps)]


def compute_oips(model, layer: str, maps=None, config: OIPConfig = OIPConfig(), seed: int = 0,
                 x_data=None, verbose: int = 1) -> dict:
    """OIPs for the maps of one layer, optimised together, and how they compare with real data.

    Parameters
    ----------
    model : keras.Model
        The trained network.
    layer : str
        Target layer: a map or dense layer of the model (`mnist_cnn.network.Network.targets`).
    maps : sequence of int, optional
        Map (or unit) indices; default all of the layer.
    config : OIPConfig
    seed : int
        Seeds the start images (per map) and the jitter.
    x_data : float32 array (M, 28, 28[, 1]), optional
        Real images (e.g. the test set) for `data_max` and `dead`; skipped when None.
    verbose : int
        1 shows a progress bar.

    Returns
    -------
    dict with images (N, 28, 28) in [0, 1], maps (N,), activation (N,) of the OIPs,
    start_activation (N,), data_max (N,) and dead (N,) bool (NaN / False without `x_data`),
    seconds (the optimisation's wall time, tracing included), precision, relu (whether the
    layer's activation is a ReLU: "dead" is defined only then).
    """
    ascent = Ascent(model, layer, config=config)
    maps = np.arange(ascent.channels) if maps is None else np.asarray(maps, dtype=np.int64)
    start = start_images(maps, seed, config.start_mean, config.start_std)
    started = time.perf_counter()
    images, activation = ascent.run(start, maps, seed=seed, verbose=verbose)
    seconds = time.perf_counter() - started
    if x_data is None:
        data_max = np.full(len(maps), np.nan, np.float32)
    else:
        data_max = data_maximum(ascent, x_data, maps)
    dead = (data_max <= 0) if (x_data is not None and ascent.relu) else np.zeros(len(maps), bool)
    return {"images": images, "maps": maps, "activation": activation,
            "start_activation": ascent.measure(start, maps), "data_max": data_max,
            "dead": dead, "seconds": seconds, "precision": ascent.precision, "relu": ascent.relu}


def oip_quality(result: dict) -> dict:
    """How many maps that are active on the data got an OIP above their data maximum."""
    live = ~result["dead"] & np.isfinite(result["data_max"])
    beat = result["activation"] > result["data_max"]
    return {"maps": int(len(result["maps"])), "dead_on_data": int(result["dead"].sum()),
            "active_on_data": int(live.sum()), "above_data_max": int((beat & live).sum()),
            "fraction_above_data_max": float((beat & live).sum() / max(live.sum(), 1)),
            "zero_at_start": int((result["start_activation"] <= 0).sum()),
            "zero_at_end": int((result["activation"] <= 0).sum())}


def objective_maximum(acts: dict, layer: str) -> np.ndarray:
    """Largest value of the OIP objective (map mean; dense value; logit) over the scanned
    images, per unit: what `data_maximum` computes, read from an explorer scan
    (`analysis.explore.compute.scan`: map means under "<layer>_mean")."""
    return acts[f"{layer}_mean" if f"{layer}_mean" in acts else layer].max(axis=0)


def oip_check(oips, stats) -> dict:
    """Per layer of an explorer build (several starts per unit, `explore.compute.layer_oips`):
    how many live units' best OIPs beat the largest activation on a test image (what
    `oip_quality` counts for one run), how many from the first start alone, and how many units
    needed the second set of starts (`retried`)."""
    out = {}
    for layer, o in oips.items():
        live = ~stats[layer]["dead"]
        retried = o["retried"]
        best = o["activation"][o["best"], np.arange(len(live))]
        ratio = best[live] / np.where(o["data_max"][live] > 0, o["data_max"][live], np.nan)
        median = None if np.all(np.isnan(ratio)) else float(f"{float(np.nanmedian(ratio)):.4g}")
        out[layer] = {"live": int(live.sum()), "dead": int((~live).sum()),
                      "best_beats": int(((best > o["data_max"]) & live).sum()),
                      "start_0_beats": int(((o["activation"][0] > o["data_max"]) & live & ~retried).sum()),
                      "retried": int((retried & live).sum()),
                      "median_ratio": median}
    return out


CLASS_IMAGE_CONFIG = OIPConfig(steps=200, tv=0.5)  # a little smoothing: logits reward noise


def class_images(model, digits, config: OIPConfig = CLASS_IMAGE_CONFIG, seed: int = 0,
                 verbose: int = 0) -> dict:
    """Inputs that maximise the logit of each digit (the "class image").

    Parameters
    ----------
    model : keras.Model
    digits : sequence of int
    config : OIPConfig
    seed : int

    Returns
    -------
    dict with images (K, 28, 28), digits (K,), logit (K,) of the own class, probability (K,)
    of the own class, predicted (K,) class of each image.
    """
    from mnist_cnn.network import describe

    digits = np.asarray(digits, dtype=np.int64)
    output = describe(model).output_layer.name
    result = compute_oips(model, output, digits, config, seed, verbose=verbose)
    probabilities = np.asarray(model(result["images"][..., None], training=False))
    return {"images": result["images"], "digits": digits, "logit": result["activation"],
            "probability": probabilities[np.arange(len(digits)), digits],
            "predicted": probabilities.argmax(axis=1)}


CARVE_CONFIG = OIPConfig(steps=20, lr=0.02, param="clip", jitter=0)


def carve(model, image, maps, layer: str | None = None, config: OIPConfig = CARVE_CONFIG) -> dict:
    """Pattern carving: amplify, in a real image, what each of some maps reacts to.

    A few small normalised gradient steps from `image` towards a larger mean activation of one
    map (one copy of the image per map), pixels kept in [0, 1]: the series' small DeepDream.

    Parameters
    ----------
    model : keras.Model
    image : float array (28, 28[, 1]) in [0, 1]
    maps : sequence of int, maps of `layer`
    layer : str, optional (default the model's last conv layer)
    config : OIPConfig (few steps, small lr, clip parameterisation)

    Returns
    -------
    dict with before (28, 28), after (K, 28, 28), maps (K,), activation_before (K,),
    activation_after (K,), predicted_before (int), predicted_after (K,),
    probability_before (classes,), probability_after (K, classes).
    """
    from mnist_cnn.network import describe

    layer = layer or describe(model).last_conv.name
    maps = np.asarray(maps, dtype=np.int64)
    before = np.asarray(image, np.float32).reshape(28, 28)
    ascent = Ascent(model, layer, config=config)
    start = np.repeat(before[None], len(maps), axis=0)
    after, activation_after = ascent.run(start, maps, verbose=0)
    p_before = np.asarray(model(before[None, ..., None], training=False))[0]
    p_after = np.asarray(model(after[..., None], training=False))
    return {"before": before, "after": after, "maps": maps,
            "activation_before": ascent.measure(start, maps), "activation_after": activation_after,
            "predicted_before": int(p_before.argmax()), "predicted_after": p_after.argmax(axis=1),
            "probability_before": p_before, "probability_after": p_after}
