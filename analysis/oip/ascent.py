"""The OIP gradient ascent: one compiled loop over a batch of (image, target map) pairs.

`Ascent` cuts the network at the target layer's pre-activation (`pre_activation_model` in
`mnist_cnn.model`: `conv_1` OIPs never run `conv_3`) and optimises all images at once, one per
map, with per-image RMS-normalised gradient steps compiled with `tf.function`. A map whose
ReLU output is zero everywhere has no gradient, so each image follows its pre-activation until
the map turns positive and its activation from then on. Before each step the image is jittered
by a pixel or two (`jitter_offsets`, seeded and shared by the batch). The steps can run in
bfloat16 where it is native (`resolve_precision`); what is reported is always float32.

The pieces it composes live beside it: objectives and penalties (`objectives.py`), the
parameterisation and start images (`param.py`). Progress is a callback (`ProgressBar`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from analysis.oip.objectives import default_objective, select
from analysis.oip.objectives import penalties as default_penalties
from analysis.oip.param import image_of, params_of
from mnist_cnn.errors import UserError
from mnist_cnn.model import pre_activation_model, with_policy
from mnist_cnn.precision import resolve


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
        "float32", "mixed_bfloat16" (alias "bfloat16"; the loop's forward and backward passes
        in bfloat16: about 3x faster on CPUs with AMX / AVX-512 BF16, emulated and slow
        elsewhere) or "auto" (mixed_bfloat16 where the CPU has it). Reported activations are
        always float32.
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
    """"auto" -> "mixed_bfloat16" where bfloat16 is native, else "float32": the training's
    vocabulary (`mnist_cnn.precision.resolve`; "bfloat16" is accepted as an alias)."""
    return resolve(precision)


def activation_fn(model, layer: str):
    """What turns the cut's pre-activation into the target's activation: "relu", None (the cut's
    output is the value: logits of the output layer, a linear unit, an average pool or a batch
    norm) or another Keras activation function (tanh, ...). Read from the model's description."""
    from mnist_cnn.network import describe

    net = describe(model)
    active = net.activation_of(layer)
    name = active.activation if active.is_unit else None
    if name in (None, "linear") or active.name == net.output_layer.name:
        return None
    return "relu" if name == "relu" else keras.activations.get(name)


# ---------------------------------------------------------------------------------------------
# Jitter: per-step shifts from a seed, so that batched and single runs agree.

def jitter_offsets(steps: int, jitter: int, seed: int) -> np.ndarray:
    """Per-step shifts (steps, 2) in [0, 2 * jitter], shared by every image of a batch."""
    rng = np.random.default_rng([int(seed), 7919])
    return rng.integers(0, 2 * jitter + 1, size=(steps, 2)).astype(np.int32)


def _shift(images, offset, jitter: int):
    """Translate images (N, 28, 28) by offset - jitter pixels, filling with background (0)."""
    padded = tf.pad(images, [[0, 0], [jitter, jitter], [jitter, jitter]])
    return tf.slice(padded, [0, offset[0], offset[1]], [-1, 28, 28])


class ProgressBar:
    """`Ascent.run` callback: a Keras progress bar over the steps (what verbose=1 adds)."""

    def __init__(self, steps: int):
        self.bar = keras.utils.Progbar(steps, unit_name="step")

    def __call__(self, steps_done: int):
        self.bar.update(steps_done)


# ---------------------------------------------------------------------------------------------
# The optimisation loop.

class Ascent:
    """Gradient ascent for a batch of (image, target map) pairs through one cut model.

    Parameters
    ----------
    model : keras.Model
        The trained network.
    layer : str
        Target layer: a map or dense layer of the model (`Network.targets`).
    objective : callable, optional
        layer output -> (N, C) values per map; default `default_objective(is_map, border)`.
    config : OIPConfig
    penalties : list of objectives.Penalty, optional
        Subtracted from the objective; default `penalties(config.tv, config.l2)`.
    """

    def __init__(self, model, layer: str, objective=None, config: OIPConfig = OIPConfig(),
                 penalties=None):
        self.layer = layer
        self.config = config
        self.penalties = default_penalties(config.tv, config.l2) if penalties is None else penalties
        self.cut = pre_activation_model(model, layer)
        self.precision = resolve_precision(config.precision)
        self.loop_cut = self.cut if self.precision == "float32" else pre_activation_model(
            with_policy(model, "mixed_bfloat16"), layer)
        self.channels = self.cut.output.shape[-1]
        self.objective = objective or default_objective(len(self.cut.output.shape) == 4,
                                                        config.border)
        activation = activation_fn(model, layer)
        self.relu = activation == "relu"
        self._activate = activation if callable(activation) else (lambda t: t)
        # autograph=False: the functions are plain TensorFlow (the loop is a tf.while_loop), so
        # tracing skips autograph's source conversion of them and of every Keras function they
        # call (about 2 s of CPU per process on the first OIP).
        self._loop = tf.function(self._steps, reduce_retracing=True, autograph=False)
        self._measure = tf.function(self._activation, reduce_retracing=True, autograph=False)
        self._all_maps = tf.function(self._all_maps_fn, reduce_retracing=True, autograph=False)

    def _activation(self, images, onehot):
        """The objective on the activation (what is reported), images (N, 28, 28) -> (N,)."""
        return select(self._all_maps(images), onehot)

    def _all_maps_fn(self, images):
        """The objective on the activation for every map, images (N, 28, 28) -> (N, C)."""
        pre = self.cut(images[..., None], training=False)
        return self.objective(tf.nn.relu(pre) if self.relu else self._activate(pre))

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
            goal = select(self.objective(self._activate(pre)), onehot)
        for penalty in self.penalties:
            goal -= penalty(images)
        return goal

    def _steps(self, params, onehot, offsets):
        """Run len(offsets) normalised gradient steps; returns the new parameters."""
        c = self.config
        reduce_axes = list(range(1, len(params.shape)))

        def step(k, params):
            with tf.GradientTape() as tape:
                tape.watch(params)
                goal = self._goal(params, onehot, offsets[k])
            grad = tape.gradient(goal, params)  # of the sum: each item only reaches its image
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=reduce_axes, keepdims=True))
            params = params + c.lr * grad / (rms + 1e-12)
            if c.param == "clip":
                params = tf.clip_by_value(params, 0.0, 1.0)
            return k + 1, params

        _, params = tf.while_loop(lambda k, _: k < tf.shape(offsets)[0], step,
                                  [tf.constant(0), params])
        return params

    def run(self, start, maps, seed: int = 0, verbose: int = 1, callbacks=()):
        """Optimise `start` images (N, 28, 28) in [0, 1] for the target maps `maps` (N,).

        Parameters
        ----------
        start : float array (N, 28, 28) in [0, 1]
        maps : int sequence (N,), the map (or unit) each image is optimised for.
        seed : int, seeds the jitter.
        verbose : int, 1 shows a Keras progress bar over the steps (a `ProgressBar`).
        callbacks : sequence of callables, each called with the number of steps done after
            every compiled chunk of `config.chunk` steps.

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
        callbacks = [*callbacks, ProgressBar(c.steps)] if verbose else list(callbacks)
        for begin in range(0, c.steps, c.chunk):
            params = self._loop(params, onehot, tf.constant(offsets[begin:begin + c.chunk]))
            for callback in callbacks:
                callback(min(begin + c.chunk, c.steps))
        images = image_of(params, c.param)
        return images.numpy(), self._measure(images, onehot).numpy()

    def all_maps(self, images) -> np.ndarray:
        """The reported objective for every map, images (N, 28, 28) -> (N, C)."""
        return self._all_maps(tf.constant(images)).numpy()

    def measure(self, images, maps, batch_size: int = 2000) -> np.ndarray:
        """The reported objective (on the activation) for each image / map pair, (N,)."""
        onehot = tf.one_hot(np.asarray(maps), self.channels, dtype=tf.float32)
        out = [self._measure(tf.constant(images[i:i + batch_size], tf.float32),
                             onehot[i:i + batch_size])
               for i in range(0, len(images), batch_size)]
        return np.concatenate([o.numpy() for o in out]) if out else np.zeros(0, np.float32)
