"""OIPs ("original input patterns"): input images that make one map of the CNN respond strongly.

Gradient ascent on the input, shaped like Lucid's optvis for a 28x28 network:

* **objectives** - small functions of the target layer's output that return one number per
  batch item (`map_mean`, `map_position`, `unit`); item i of a batch targets map `maps[i]`;
* **parameterisations** - how free parameters become an image in [0, 1] (`clip`, `sigmoid`,
  `fourier`, a 1/f-scaled spectrum behind a sigmoid);
* **transforms and regularisers** - jitter by a pixel or two, total variation, L2;
* **one optimisation loop** (`Ascent`, its steps compiled with `tf.function`): all maps of a
  layer are optimised at once, one image per map, with per-image normalised gradient steps.

The network is cut at the target layer (`conv_1` OIPs never run `conv_3`) and the cut ends at
the layer's *pre-activation*. A map whose ReLU output is zero everywhere has no gradient, so
each image follows its pre-activation until the map turns positive and its activation from then
on; on the default model that gets every `conv_3` map that is live on the test set off zero. Start images are random fluctuations on
several length scales (wavelengths 28, 14, 7 and 4 px, as in the series) drawn from
`(seed, map)`, so the OIP of map i does not depend on which other maps share its batch.

Also here, for the digit report: the class image (input maximising the logit of a digit) and
"pattern carving" (a real image nudged for a few steps towards what one map reacts to).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from mnist_cnn.config import OUTPUT_SHAPES
from mnist_cnn.errors import UserError
from mnist_cnn.model import pre_activation_model, with_weights
from mnist_cnn.precision import resolve

START_WAVELENGTHS = (28, 14, 7, 4)  # px; the series seeded its OIPs on 4 length scales


@dataclass(frozen=True)
class OIPConfig:
    """Settings of the gradient ascent; the defaults are tuned for 28x28 inputs in [0, 1].

    Attributes
    ----------
    steps : int
        Gradient steps.
    lr : float
        Step size: each step moves the parameters by `lr` in root-mean-square over the image.
    param : str
        "clip" (pixels, projected onto [0, 1]), "sigmoid" or "fourier" (1/f spectrum, sigmoid).
    jitter : int
        Random shift of the image by up to this many pixels before each step (0 disables).
    tv, l2 : float
        Weights of the total-variation and L2 penalties, relative to the objective.
    border : int
        Positions at the map's edge left out of the map mean (0 = the whole map).
    start_mean, start_std : float
        Mean and spread of the multi-scale start images (in image units).
    chunk : int
        Steps per call of the compiled loop; the progress bar moves between calls.
    precision : str
        "float32", "bfloat16" (the loop's forward and backward passes in bfloat16: about 3x
        faster on CPUs with AMX / AVX-512 BF16, emulated and slow elsewhere) or "auto"
        (bfloat16 where the CPU has it). Reported activations are always float32.
    """

    steps: int = 200
    lr: float = 0.05
    param: str = "clip"
    jitter: int = 1
    tv: float = 0.0
    l2: float = 0.0
    border: int = 0
    start_mean: float = 0.2
    start_std: float = 0.1
    chunk: int = 25
    precision: str = "auto"


def resolve_precision(precision: str) -> str:
    """"auto" -> "bfloat16" where bfloat16 is native (see `mnist_cnn.precision`), else "float32"."""
    return "float32" if resolve(precision) == "float32" else "bfloat16"


def is_relu_layer(layer: str) -> bool:
    """Whether the target's activation is a ReLU (all but the logits of "output")."""
    return layer != "output"


# ---------------------------------------------------------------------------------------------
# Objectives: functions of the layer output (N, ...) -> (N, C), one value per item and map.
# The loop picks each item's own map with a one-hot mask; data_maximum reads all C at once.
# An optional `revive` attribute says what to climb on the pre-activation while the objective
# is zero (default: the objective itself).

def map_mean(border: int = 0):
    """Mean of every map over its positions, `border` edge positions left out.

    Its `revive` (used while a map is zero everywhere) is the largest pre-activation in the
    same region: the map turns positive as soon as that one position does.
    """
    def crop(t):
        return t[:, border:-border, border:-border, :] if border else t

    def objective(t):
        return tf.reduce_mean(crop(t), axis=[1, 2])

    objective.revive = lambda t: tf.reduce_max(crop(t), axis=[1, 2])
    return objective


def map_position(row: int, col: int):
    """Every map's value at one position (row, col)."""
    def objective(t):
        return t[:, row, col, :]
    return objective


def unit():
    """Dense units (or output logits) as they are: a (N, C) output."""
    def objective(t):
        return t
    return objective


def select(values, onehot):
    """Each item's own map: values (N, C), one-hot targets (N, C) -> (N,)."""
    return tf.reduce_sum(values * onehot, axis=-1)


def default_objective(layer: str, border: int = 0):
    """`map_mean` for map layers, `unit` for dense_1 and the output logits."""
    return map_mean(border) if len(OUTPUT_SHAPES[layer]) == 3 else unit()


# ---------------------------------------------------------------------------------------------
# Parameterisations: parameters <-> image in [0, 1].

def _spectrum_scale(size=28):
    """1/f amplitude scale of a real 2-D FFT of a size x size image (Lucid's `fft_image`)."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freq = np.sqrt(fx ** 2 + fy ** 2)
    return (1.0 / np.maximum(freq, 1.0 / size)).astype(np.float32)


_SCALE = tf.constant(_spectrum_scale()[None, :, :])


def _logit(x):
    x = np.clip(x, 1e-3, 1 - 1e-3)
    return np.log(x / (1 - x))


def image_of(params, param: str):
    """Images (N, 28, 28) in [0, 1] from parameters (tensor)."""
    if param == "clip":
        return params
    if param == "sigmoid":
        return tf.sigmoid(params)
    spectrum = tf.complex(params[..., 0], params[..., 1]) * tf.cast(_SCALE, tf.complex64)
    return tf.sigmoid(tf.signal.irfft2d(spectrum, fft_length=[28, 28]))


def params_of(images: np.ndarray, param: str) -> np.ndarray:
    """Inverse of `image_of`: parameters (float32) that give `images` (N, 28, 28)."""
    images = np.asarray(images, np.float32)
    if param == "clip":
        return np.clip(images, 0, 1)
    if param == "sigmoid":
        return _logit(images).astype(np.float32)
    if param == "fourier":
        spectrum = np.fft.rfft2(_logit(images)) / _spectrum_scale()
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)
    raise UserError(f"unknown parameterisation {param!r}; choose clip, sigmoid or fourier")


# ---------------------------------------------------------------------------------------------
# Start images and jitter, both from seeds so that batched and single runs agree.

def _upsample_matrix(nodes: int, size: int = 28) -> np.ndarray:
    """Linear interpolation from `nodes` grid points to `size` pixels (size x nodes)."""
    pos = np.linspace(0, nodes - 1, size)
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(nodes)[None, :]))


def start_images(maps, seed: int, mean: float = 0.2, std: float = 0.1,
                 wavelengths=START_WAVELENGTHS) -> np.ndarray:
    """Random fluctuations on several length scales, one image per map, in [0, 1].

    Parameters
    ----------
    maps : sequence of int
        The image for map m is drawn from the generator seeded with (seed, m).
    seed : int
    mean, std : float
        Mean and standard deviation of the result before clipping.
    wavelengths : sequence of int
        Length scales in pixels: for each, Gaussian noise on a grid with that spacing / 2,
        interpolated linearly to 28x28; the scales get equal weight.

    Returns
    -------
    float32 array (N, 28, 28)
    """
    out = np.empty((len(maps), 28, 28), np.float32)
    for i, m in enumerate(maps):
        rng = np.random.default_rng([int(seed), int(m)])
        noise = np.zeros((28, 28))
        for wavelength in wavelengths:
            up = _upsample_matrix(max(round(2 * 28 / wavelength), 1) + 1)
            grid = rng.standard_normal((up.shape[1], up.shape[1]))
            noise += up @ grid @ up.T
        noise = (noise - noise.mean()) / (noise.std() + 1e-8)
        out[i] = np.clip(mean + std * noise, 0.0, 1.0)
    return out


def jitter_offsets(steps: int, jitter: int, seed: int) -> np.ndarray:
    """Per-step shifts (steps, 2) in [0, 2 * jitter], shared by every image of a batch."""
    rng = np.random.default_rng([int(seed), 7919])
    return rng.integers(0, 2 * jitter + 1, size=(steps, 2)).astype(np.int32)


def _shift(images, offset, jitter: int):
    """Translate images (N, 28, 28) by offset - jitter pixels, filling with background (0)."""
    padded = tf.pad(images, [[0, 0], [jitter, jitter], [jitter, jitter]])
    return tf.slice(padded, [0, offset[0], offset[1]], [-1, 28, 28])


def total_variation(images):
    """Mean absolute difference of neighbouring pixels, per image (N,)."""
    dy = tf.reduce_mean(tf.abs(images[:, 1:, :] - images[:, :-1, :]), axis=[1, 2])
    dx = tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2])
    return dx + dy


# ---------------------------------------------------------------------------------------------
# The optimisation loop.

class Ascent:
    """Gradient ascent for a batch of (image, target map) pairs through one cut model.

    Parameters
    ----------
    model : keras.Model
        The trained network.
    layer : str
        Target layer (one of TARGET_LAYERS).
    objective : callable, optional
        layer output -> (N, C) values per map; default `default_objective(layer, border)`.
    config : OIPConfig
    """

    def __init__(self, model, layer: str, objective=None, config: OIPConfig = OIPConfig()):
        self.layer = layer
        self.config = config
        self.cut = pre_activation_model(model, layer)
        self.precision = resolve_precision(config.precision)
        self.loop_cut = self.cut if self.precision == "float32" else pre_activation_model(
            with_weights(model.get_weights(), "mixed_bfloat16"), layer)
        self.channels = self.cut.output.shape[-1]
        self.objective = objective or default_objective(layer, config.border)
        self.relu = is_relu_layer(layer)
        self._loop = tf.function(self._steps, reduce_retracing=True)
        self._measure = tf.function(self._activation, reduce_retracing=True)
        self._all_maps = tf.function(self._all_maps_fn, reduce_retracing=True)

    def _activation(self, images, onehot):
        """The objective on the activation (what is reported), images (N, 28, 28) -> (N,)."""
        return select(self._all_maps(images), onehot)

    def _all_maps_fn(self, images):
        """The objective on the activation for every map, images (N, 28, 28) -> (N, C)."""
        pre = self.cut(images[..., None], training=False)
        return self.objective(tf.nn.relu(pre) if self.relu else pre)

    def _goal(self, params, onehot, offset):
        """Per-item quantity to maximise: activation once positive, pre-activation before."""
        c = self.config
        images = image_of(params, c.param)
        seen = _shift(images, offset, c.jitter) if c.jitter else images
        pre = tf.cast(self.loop_cut(seen[..., None], training=False), tf.float32)
        if self.relu:
            revive = getattr(self.objective, "revive", self.objective)
            goal = select(revive(pre), onehot)
            active = select(self.objective(tf.nn.relu(pre)), onehot)
            # where() passes gradient only through the chosen branch, item by item
            goal = tf.where(active > 0, active, goal)
        else:
            goal = select(self.objective(pre), onehot)
        if c.tv:
            goal -= c.tv * total_variation(images)
        if c.l2:
            goal -= c.l2 * tf.reduce_mean(tf.square(images), axis=[1, 2])
        return goal

    def _steps(self, params, onehot, offsets):
        """Run len(offsets) normalised gradient steps; returns the new parameters."""
        c = self.config
        reduce_axes = list(range(1, len(params.shape)))
        for k in tf.range(tf.shape(offsets)[0]):
            with tf.GradientTape() as tape:
                tape.watch(params)
                goal = self._goal(params, onehot, offsets[k])
            grad = tape.gradient(goal, params)  # of the sum: each item only reaches its image
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=reduce_axes, keepdims=True))
            params = params + c.lr * grad / (rms + 1e-12)
            if c.param == "clip":
                params = tf.clip_by_value(params, 0.0, 1.0)
        return params

    def run(self, start, maps, seed: int = 0, verbose: int = 1):
        """Optimise `start` images (N, 28, 28) in [0, 1] for the target maps `maps` (N,).

        Parameters
        ----------
        start : float array (N, 28, 28) in [0, 1]
        maps : int sequence (N,), the map (or unit) each image is optimised for.
        seed : int, seeds the jitter.
        verbose : int, 1 shows a Keras progress bar over the steps.

        Returns
        -------
        (images (N, 28, 28) float32 in [0, 1], activation (N,) float32 of the final images)
        """
        c = self.config
        maps = np.asarray(maps, dtype=np.int64)
        if len(maps) and (maps.min() < 0 or maps.max() >= self.channels):
            raise UserError(f"map index out of range for {self.layer} (0-{self.channels - 1})")
        onehot = tf.one_hot(maps, self.channels, dtype=tf.float32)
        params = tf.constant(params_of(start, c.param))
        offsets = jitter_offsets(c.steps, c.jitter, seed)
        bar = keras.utils.Progbar(c.steps, unit_name="step") if verbose else None
        for begin in range(0, c.steps, c.chunk):
            params = self._loop(params, onehot, tf.constant(offsets[begin:begin + c.chunk]))
            if bar:
                bar.update(min(begin + c.chunk, c.steps))
        images = image_of(params, c.param)
        return images.numpy(), self._measure(images, onehot).numpy()

    def measure(self, images, maps, batch_size: int = 2000) -> np.ndarray:
        """The reported objective (on the activation) for each image / map pair, (N,)."""
        onehot = tf.one_hot(np.asarray(maps), self.channels, dtype=tf.float32)
        out = [self._measure(tf.constant(images[i:i + batch_size], tf.float32),
                             onehot[i:i + batch_size])
               for i in range(0, len(images), batch_size)]
        return np.concatenate([o.numpy() for o in out]) if out else np.zeros(0, np.float32)


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
        values = ascent._all_maps(tf.constant(x[i:i + batch_size])).numpy()
        best = np.maximum(best, values.max(axis=0))
    return best[np.asarray(maps)]


# ---------------------------------------------------------------------------------------------
# Whole layers, the class image and pattern carving (compute: arrays in, arrays out).

def compute_oips(model, layer: str, maps=None, config: OIPConfig = OIPConfig(), seed: int = 0,
                 x_data=None, verbose: int = 1) -> dict:
    """OIPs for the maps of one layer, optimised together, and how they compare with real data.

    Parameters
    ----------
    model : keras.Model
        The trained network.
    layer : str
        Target layer (one of TARGET_LAYERS).
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
    seconds (the optimisation's wall time, tracing included), precision.
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
            "dead": dead, "seconds": seconds, "precision": ascent.precision}


def oip_quality(result: dict) -> dict:
    """How many maps that are active on the data got an OIP above their data maximum."""
    live = ~result["dead"] & np.isfinite(result["data_max"])
    beat = result["activation"] > result["data_max"]
    return {"maps": int(len(result["maps"])), "dead_on_data": int(result["dead"].sum()),
            "active_on_data": int(live.sum()), "above_data_max": int((beat & live).sum()),
            "fraction_above_data_max": float((beat & live).sum() / max(live.sum(), 1)),
            "zero_at_start": int((result["start_activation"] <= 0).sum()),
            "zero_at_end": int((result["activation"] <= 0).sum())}


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
    digits = np.asarray(digits, dtype=np.int64)
    result = compute_oips(model, "output", digits, config, seed, verbose=verbose)
    probabilities = np.asarray(model(result["images"][..., None], training=False))
    return {"images": result["images"], "digits": digits, "logit": result["activation"],
            "probability": probabilities[np.arange(len(digits)), digits],
            "predicted": probabilities.argmax(axis=1)}


CARVE_CONFIG = OIPConfig(steps=20, lr=0.02, param="clip", jitter=0)


def carve(model, image, maps, layer: str = "conv_3", config: OIPConfig = CARVE_CONFIG) -> dict:
    """Pattern carving: amplify, in a real image, what each of some maps reacts to.

    A few small normalised gradient steps from `image` towards a larger mean activation of one
    map (one copy of the image per map), pixels kept in [0, 1]: the series' small DeepDream.

    Parameters
    ----------
    model : keras.Model
    image : float array (28, 28[, 1]) in [0, 1]
    maps : sequence of int, maps of `layer`
    layer : str
    config : OIPConfig (few steps, small lr, clip parameterisation)

    Returns
    -------
    dict with before (28, 28), after (K, 28, 28), maps (K,), activation_before (K,),
    activation_after (K,), predicted_before (int), predicted_after (K,),
    probability_before (10,), probability_after (K, 10).
    """
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


# ---------------------------------------------------------------------------------------------
# Figures (arrays in, Matplotlib figure out).

def _grid_columns(n: int) -> int:
    return min(n, 16 if n > 64 else 8)


def plot_oips(images, maps, activation, layer: str, data_max=None, labels=None, title=None):
    """Grid of OIPs, each tile labelled with its map index and final activation.

    Parameters
    ----------
    images : array (N, 28, 28) in [0, 1]
    maps, activation : arrays (N,)
    layer : str
    data_max : array (N,), optional; tiles whose activation does not exceed it get a red label,
        maps dead on the data "dead".
    labels : list of str, optional, extra text per tile (e.g. "AUC 0.93").
    title : str, optional

    Returns
    -------
    matplotlib Figure (one grey scale: black = 1, white = 0, like ink on paper)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    cols = _grid_columns(max(n, 1))
    rows = max(math.ceil(n / cols), 1)
    gap, tile = 10 if labels else 7, 28
    canvas = np.full((rows * (tile + gap), cols * (tile + 1) - 1), np.nan, np.float32)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        canvas[r * (tile + gap) + gap:(r + 1) * (tile + gap), q * (tile + 1):q * (tile + 1) + tile] = img
    scale = 0.95 if cols <= 8 else 0.72
    fig, ax = plt.subplots(figsize=(cols * scale + 0.4, rows * scale * (tile + gap) / tile + 0.5))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")  # white gaps between tiles
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    size = 6.5 if cols <= 8 else 5
    for i in range(n):
        r, q = divmod(i, cols)
        weak = data_max is not None and np.isfinite(data_max[i]) and not activation[i] > data_max[i]
        dead = data_max is not None and np.isfinite(data_max[i]) and data_max[i] <= 0 and layer != "output"
        text = f"{int(maps[i])}: {activation[i]:.3g}" + (" dead" if dead else "")
        if labels:
            text += "\n" + labels[i]
        ax.text(q * (tile + 1) + tile / 2 - 0.5, r * (tile + gap) + gap - 1, text, ha="center",
                va="bottom", fontsize=size, color="tab:red" if weak else "black", linespacing=0.95)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.axis("off")
    ax.set_title(title or f"{layer}: OIPs of {n} maps (map index: mean activation; red = not "
                 "above the largest activation on any test image)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_class_images(images, digits, logit, probability):
    """The class images side by side, titled with the digit, its logit and softmax probability.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(1.9 * len(images), 2.3), squeeze=False)
    for ax, img, d, z, p in zip(axes[0], images, digits, logit, probability):
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"class {int(d)}\nlogit {z:.1f}, p {p:.3f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_carving(result: dict, layer: str = "conv_3"):
    """Pattern carving: the real image, then per map the carved image and the change.

    Parameters
    ----------
    result : dict from `carve`.

    Returns
    -------
    matplotlib Figure with one row per map: before, after, after - before.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    k = len(result["maps"])
    fig, axes = plt.subplots(k, 3, figsize=(5.6, 1.95 * k + 0.3), squeeze=False)
    diff = result["after"] - result["before"][None]
    limit = max(float(np.abs(diff).max()), 1e-6)
    for row, m in enumerate(result["maps"]):
        a, b, c = axes[row]
        a.imshow(result["before"], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        a.set_title(f"before: map {int(m)} = {result['activation_before'][row]:.3g}\n"
                    f"predicted {result['predicted_before']}", fontsize=7.5)
        b.imshow(result["after"][row], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        b.set_title(f"after: map {int(m)} = {result['activation_after'][row]:.3g}\n"
                    f"predicted {int(result['predicted_after'][row])}", fontsize=7.5)
        c.imshow(diff[row], cmap="RdBu_r", norm=TwoSlopeNorm(0, -limit, limit),
                 interpolation="nearest")
        c.set_title("after - before\n(red: ink added)", fontsize=7.5)
        for ax in (a, b, c):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Pattern carving on {layer}", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Command line, benchmark and report section.

def run_oip_command(args) -> int:
    """`mnist_cnn oip`: write <out>/<layer>.png and <out>/<layer>.npz, print a summary."""
    from pathlib import Path

    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.fileio import save_figure, save_npz
    from mnist_cnn.model import load_trained

    model = load_trained(args.model)
    _, (x_test, _) = load_mnist(args.data or None)
    config = replace(OIPConfig(), steps=args.steps, precision=getattr(args, "precision", "auto"))
    result = compute_oips(model, args.layer, args.maps, config, args.seed, to_input(x_test))
    out = Path(args.out)
    save_npz(out / f"{args.layer}.npz", images=result["images"], maps=result["maps"],
             activation=result["activation"], data_max=result["data_max"], dead=result["dead"],
             start_activation=result["start_activation"])
    save_figure(plot_oips(result["images"], result["maps"], result["activation"], args.layer,
                          result["data_max"]), out / f"{args.layer}.png")
    q = oip_quality(result)
    print(f"{args.layer}: {q['maps']} OIPs, {args.steps} steps in {result['seconds']:.1f} s "
          f"({result['precision']}); above the largest test-image activation for "
          f"{q['above_data_max']}/{q['active_on_data']} maps active on the test set; "
          f"{q['dead_on_data']} dead on the whole test set; {q['zero_at_start']} at zero at the "
          f"start, {q['zero_at_end']} at the end")
    if q["dead_on_data"]:
        print("dead on the test set: " + ", ".join(str(int(m)) for m in result["maps"][result["dead"]]))
    print(f"wrote {out / (args.layer + '.png')} and {out / (args.layer + '.npz')}")
    return 0


def bench_oip(args) -> dict:
    """`make bench` section: OIP quality on conv_3, and the time for conv_3 and all conv maps.

    Targets: >= 95% of the conv_3 maps active on the test set get an OIP above their largest
    test-image activation; 128 conv_3 maps x 200 steps <= 4 s; all 224 conv maps <= 10 s.
    Times are the best of 3 runs after a first run that includes tracing.
    """
    from mnist_cnn.bench import ensure_model
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.model import load_trained

    model = load_trained(ensure_model())
    _, (x_test, _) = load_mnist()
    x = to_input(x_test)
    config = OIPConfig(steps=200)
    out = {"steps": config.steps, "precision": resolve_precision(config.precision)}
    result = compute_oips(model, "conv_3", None, config, 0, x, verbose=0)
    q = oip_quality(result)
    out["conv_3_quality"] = q
    out["conv_3_first_run_seconds"] = round(result["seconds"], 2)
    print(f"[bench] conv_3 OIPs above data max: {q['above_data_max']}/{q['active_on_data']} "
          f"active maps ({q['fraction_above_data_max']:.1%}, target >= 95%); "
          f"{q['dead_on_data']} dead on the test set; zero at end {q['zero_at_end']}")
    layer_seconds = {}
    for layer in ("conv_1", "conv_2", "conv_3"):
        ascent = Ascent(model, layer, config=config)
        maps = np.arange(ascent.channels)
        start = start_images(maps, 0, config.start_mean, config.start_std)
        ascent.run(start, maps, verbose=0)  # trace
        times = []
        for _ in range(3):
            t = time.perf_counter()
            ascent.run(start, maps, verbose=0)
            times.append(time.perf_counter() - t)
        layer_seconds[layer] = round(min(times), 2)
        print(f"[bench] {layer}: {len(maps)} maps x {config.steps} steps in {min(times):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    if out["precision"] != "float32":  # what the bfloat16 default saves
        ascent = Ascent(model, "conv_3", config=replace(config, precision="float32"))
        maps = np.arange(ascent.channels)
        start = start_images(maps, 0, config.start_mean, config.start_std)
        ascent.run(start, maps, verbose=0)
        t = time.perf_counter()
        ascent.run(start, maps, verbose=0)
        out["conv_3_float32_seconds"] = round(time.perf_counter() - t, 2)
        print(f"[bench] conv_3 in float32 instead: {out['conv_3_float32_seconds']:.2f} s")
    out["seconds_per_layer"] = layer_seconds
    out["conv_3_seconds"] = layer_seconds["conv_3"]
    out["all_conv_seconds"] = round(sum(layer_seconds.values()), 2)
    out["targets_met"] = {"quality_95": q["fraction_above_data_max"] >= 0.95,
                          "conv_3_4s": layer_seconds["conv_3"] <= 4.0,
                          "all_conv_10s": out["all_conv_seconds"] <= 10.0}
    print(f"[bench] conv_3 {out['conv_3_seconds']} s (target <= 4), all 224 conv maps "
          f"{out['all_conv_seconds']} s (target <= 10), {out['precision']}")
    return out


REPORT_MAPS = 8  # OIPs per side in the digit report


def report_section(ctx):
    """`make analyze` section: OIPs of the top-ranked conv_3 maps, class images, carving.

    Parameters
    ----------
    ctx : analysis.report.Context

    Returns
    -------
    analysis.report.Section
    """
    from analysis.report import Section

    d, c = ctx.digit, ctx.contrast
    auc = np.asarray(ctx.comparison()["conv_3"]["effect"]["auc"])
    for_digit = np.argsort(-auc, kind="stable")[:REPORT_MAPS]
    for_contrast = np.argsort(auc, kind="stable")[:REPORT_MAPS]
    maps = np.r_[for_digit, for_contrast]
    r = compute_oips(ctx.model, "conv_3", maps, OIPConfig(), ctx.seed, ctx.x_test, verbose=0)
    q = oip_quality(r)
    labels = [f"AUC {auc[m]:.2f}" for m in maps]
    figures = [ctx.figure(
        "oip_conv_3_top",
        plot_oips(r["images"], maps, r["activation"], "conv_3", r["data_max"], labels,
                  title=f"OIPs of the {REPORT_MAPS} conv_3 maps that most prefer {d} over {c} "
                        f"(top row) and {c} over {d} (bottom row)"),
        f"Input patterns (OIPs) that maximise the mean activation of the conv_3 maps that best "
        f"prefer {d} over {c} (top row, highest AUC) and {c} over {d} (bottom row, lowest AUC); "
        "200 normalised gradient steps from multi-scale noise. Tile label: map index, the OIP's "
        "activation, the map's AUC; red: the OIP does not exceed the map's largest activation "
        "on a test image.",
        images=r["images"], maps=maps, activation=r["activation"], data_max=r["data_max"],
        auc=auc[maps])]
    ci = class_images(ctx.model, [d, c], seed=ctx.seed)
    figures.append(ctx.figure(
        "class_images", plot_class_images(ci["images"], ci["digits"], ci["logit"],
                                          ci["probability"]),
        f"Class images: inputs that maximise the logit of {d} and of {c} (200 steps, small "
        "total-variation penalty), with the logit and the softmax probability they reach.",
        images=ci["images"], digits=ci["digits"], logit=ci["logit"],
        probability=ci["probability"]))
    source = int(ctx.sample_indices(d)[0])
    carved = carve(ctx.model, ctx.x_test[source], np.r_[for_digit[:2], for_contrast[:2]])
    figures.append(ctx.figure(
        "pattern_carving", plot_carving(carved),
        f"Pattern carving: test image #{source} (a {d}) after {CARVE_CONFIG.steps} small gradient "
        f"steps that raise one conv_3 map each: the two maps most typical of {d}, then the two "
        f"most typical of {c}. Right: what changed (red: ink added, blue: removed).",
        before=carved["before"], after=carved["after"], maps=carved["maps"],
        activation_before=carved["activation_before"],
        activation_after=carved["activation_after"], predicted_after=carved["predicted_after"]))
    text = (f"OIPs (gradient-ascent input patterns) of the conv_3 maps that separate {d} from {c} "
            f"best: {q['above_data_max']} of {q['active_on_data']} maps active on the test images "
            f"reach more than on any test image; {q['dead_on_data']} are dead on them. "
            f"The class image of {d} reaches logit {ci['logit'][0]:.1f} (p = "
            f"{ci['probability'][0]:.3f}). Carving test image #{source} towards map "
            f"{int(for_contrast[0])} (typical of {c}) leads to the prediction "
            f"{int(carved['predicted_after'][2])}.")
    summary = {"maps_for_digit": for_digit.tolist(), "maps_for_contrast": for_contrast.tolist(),
               "activation": r["activation"].round(4).tolist(),
               "data_max": r["data_max"].round(4).tolist(), **q,
               "class_image_logit": ci["logit"].round(3).tolist(),
               "class_image_probability": ci["probability"].round(4).tolist(),
               "carving_source_index": source,
               "carving_predicted_after": carved["predicted_after"].tolist()}
    return Section("oip", "OIPs: what the separating maps look for", text, figures, [], summary)
