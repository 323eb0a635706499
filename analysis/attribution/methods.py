"""Attribution maps: which input pixels drive a logit (or a difference of two logits).

`Attributor` computes, for a batch of images and one target per image, every method at once:

* saliency - |d f / d x|, the plain gradient's size (Simonyan et al. 2014);
* gradient x input - d f / d x times x (Shrikumar et al. 2016);
* SmoothGrad - the gradient averaged over noisy copies of x (Smilkov et al. 2017), times x,
  so it differs from gradient x input only by the smoothing;
* integrated gradients - (x - b) times the gradient averaged along the straight path from
  the black baseline b = 0 to x (Sundararajan et al. 2017), midpoint rule; its completeness
  (the map sums to f(x) - f(b)) is returned with it;
* Grad-CAM on every conv layer - ReLU of the layer's maps weighted by their mean gradient
  (Selvaraju et al. 2017), bilinearly resized to the input;
* occlusion - how much f drops when a patch around the pixel is set to black (Zeiler &
  Fergus 2014), averaged over the patches covering each pixel.

The target f is `logits @ w` with one weight row per image: a one-hot row is one class's logit,
e_c - e_d is "c rather than d". Logits come from a linear copy of the model's last Dense
(`mnist_cnn.model.linear_copy`, the models end in softmax), so any model that
`mnist_cnn.network.describe` accepts works; which layers are conv and which is the output come
from that description, never from a table.

Everything is batched and runs in a few `tf.function`s traced once for any batch size (the
variables are read, not captured as constants, so `analysis.attribution.faithfulness` can
re-initialise weights in place without retracing). tf-keras-vis was tried and not used: see
docs/predict.md.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mnist_cnn.errors import UserError
from mnist_cnn.model import linear_copy
from mnist_cnn.network import describe

METHODS = ("saliency", "gradient_x_input", "smoothgrad", "integrated_gradients", "occlusion")
TITLES = {"saliency": "saliency |gradient|", "gradient_x_input": "gradient x input",
          "smoothgrad": "SmoothGrad x input", "integrated_gradients": "integrated gradients",
          "occlusion": "occlusion"}


def title(method: str) -> str:
    """Human name of a method key ("gradcam:conv_3" -> "Grad-CAM conv_3")."""
    if method.startswith("gradcam:"):
        return f"Grad-CAM {method.split(':', 1)[1]}"
    return TITLES.get(method, method)


def conv_layer_names(model) -> list:
    """Names of the model's conv layers, in order (`mnist_cnn.network.describe`)."""
    return [info.name for info in describe(model).conv_layers]


COMPLETENESS_TOLERANCE = 0.01  # integrated gradients: |sum - (f(x) - f(0))| <= 1% of |f(x) - f(0)|


def output_dense(model):
    """The model's output Dense layer (softmax or linear; `describe` refuses anything else)."""
    return model.get_layer(describe(model).output_layer.name)


def logit_network(model) -> keras.Model:
    """Model from the input to [every conv layer's output..., logits], sharing `model`'s weights.

    The logits are the last Dense's pre-activation, through a linear copy of that layer (its own
    weights, copied), so softmax(logits) is the model's output."""
    last = output_dense(model)
    logits = linear_copy(last)(last.input)
    convs = [model.get_layer(name).output for name in conv_layer_names(model)]
    return keras.Model(model.inputs[0], [*convs, logits], name="attribution_network")


def target_weights(classes, contrast=None, num_classes: int = 10) -> np.ndarray:
    """(N, num_classes) rows: e_c (a class's logit) or e_c - e_d (class c rather than d)."""
    classes = np.asarray(classes, dtype=int).reshape(-1)
    w = np.zeros((classes.size, num_classes), np.float32)
    w[np.arange(classes.size), classes] = 1.0
    if contrast is not None:
        contrast = np.broadcast_to(np.asarray(contrast, dtype=int), classes.shape)
        if (contrast == classes).any():
            raise UserError("a contrast class must differ from the class it is compared with")
        w[np.arange(classes.size), contrast] -= 1.0
    return w


def _in_chunks(fn, rows: int, *arrays):
    """`fn` over row chunks of `arrays` (same length); outputs concatenated along axis 0."""
    n = len(arrays[0])
    parts = [fn(*(tf.constant(a[i:i + rows]) for a in arrays)) for i in range(0, max(n, 1), rows)]
    if isinstance(parts[0], (tuple, list)):
        return [np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(len(parts[0]))]
    return np.concatenate([np.asarray(p) for p in parts])


class Attributor:
    """Every attribution method for one model, compiled once.

    Parameters
    ----------
    model : keras.Model
        A trained network ending in a softmax (or linear) Dense.
    smooth_samples, smooth_noise : SmoothGrad's noisy copies and their standard deviation
        (as a fraction of the input range [0, 1]; 0.15 is the paper's 10-20%).
    ig_steps : int, points on the integrated-gradients path (midpoint rule; doubled for the
        images that miss completeness by more than 1%, see `integrated_gradients`).
    patch, stride : occlusion patch side and step, in pixels (4 and 4: 49 patches tile the
        28x28 field; stride 2 gives smoother maps at 3.4 times the cost).
    rows : images per compiled call (memory bound; any batch is cut into such chunks).
    seed : SmoothGrad's noise.
    """

    def __init__(self, model, smooth_samples: int = 16, smooth_noise: float = 0.15,
                 ig_steps: int = 16, patch: int = 4, stride: int = 4, rows: int = 2048,
                 seed: int = 0):
        self.net = logit_network(model)
        network = describe(model)
        self.conv_names = [info.name for info in network.conv_layers]
        self.input_shape = tuple(network.input_shape)
        self.num_classes = int(network.num_classes)
        self.smooth_samples, self.smooth_noise = int(smooth_samples), float(smooth_noise)
        self.ig_steps, self.patch, self.stride = int(ig_steps), int(patch), int(stride)
        self.rows, self.seed = int(rows), int(seed)
        x_spec = tf.TensorSpec([None, *self.input_shape], tf.float32)
        w_spec = tf.TensorSpec([None, self.num_classes], tf.float32)
        self._logits = tf.function(lambda x: self._outputs(x)[-1], input_signature=[x_spec])
        # Forward passes of many images (occlusion, deletion curves) go through XLA: 2.5x
        # faster than the graph on the 2-core Xeon (0.066 vs 0.16 ms per image); XLA compiles
        # per shape, so they are fed in full chunks of `rows` only (the last one padded).
        # Gradients stay in the graph, where XLA was 2x slower.
        self._logits_xla = tf.function(lambda x: self._outputs(x)[-1], jit_compile=True)
        self._grad = tf.function(self._grad_fn, input_signature=[x_spec, w_spec])
        self._cams = tf.function(self._cam_fn, input_signature=[x_spec, w_spec])

    # -- compiled pieces ---------------------------------------------------------------------

    def _outputs(self, x) -> list:
        """[conv outputs..., logits] (Keras returns a bare tensor for a one-output model)."""
        outs = self.net(x, training=False)
        return list(outs) if isinstance(outs, (list, tuple)) else [outs]

    def _grad_fn(self, x, w):
        with tf.GradientTape() as tape:
            tape.watch(x)
            f = tf.reduce_sum(self._outputs(x)[-1] * w, axis=-1)
        return f, tape.gradient(f, x)

    def _cam_fn(self, x, w):
        with tf.GradientTape() as tape:
            outs = self._outputs(x)
            f = tf.reduce_sum(outs[-1] * w, axis=-1)
        acts = outs[:-1]
        if not acts:  # no conv layer: no Grad-CAM
            return tf.zeros([tf.shape(x)[0], 0, *self.input_shape[:2]])
        grads = tape.gradient(f, acts)
        cams = []
        for a, g in zip(acts, grads):
            alpha = tf.reduce_mean(g, axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(a * alpha, axis=-1, keepdims=True))
            cams.append(tf.image.resize(cam, self.input_shape[:2], method="bilinear")[..., 0])
        return tf.stack(cams, axis=1)  # (N, conv layers, H, W)

    # -- methods -----------------------------------------------------------------------------

    def logits(self, x) -> np.ndarray:
        """Logits (N, classes) of any number of images."""
        x = np.asarray(x, np.float32)
        if len(x) < self.rows:
            return _in_chunks(self._logits, self.rows, x)
        pad = -len(x) % self.rows
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), np.float32)])
        return _in_chunks(self._logits_xla, self.rows, x)[:len(x) - pad]

    def target(self, x, w) -> np.ndarray:
        """f(x) = logits(x) @ w, (N,)."""
        return np.sum(self.logits(x) * w, axis=-1)

    def gradient(self, x, w) -> np.ndarray:
        """d f / d x, same shape as x."""
        return _in_chunks(self._grad, self.rows, x, w)[1]

    def saliency(self, x, w):
        return np.abs(self.gradient(x, w)).max(axis=-1)

    def gradient_x_input(self, x, w):
        return (self.gradient(x, w) * x).sum(axis=-1)

    def smoothgrad(self, x, w):
        s = self.smooth_samples
        noise = np.random.default_rng(self.seed).normal(0, self.smooth_noise, (len(x) * s, *x.shape[1:]))
        noisy = (np.repeat(x, s, axis=0) + noise).astype(np.float32)
        grads = self.gradient(noisy, np.repeat(w, s, axis=0)).reshape(len(x), s, *x.shape[1:])
        return (grads.mean(axis=1) * x).sum(axis=-1)

    def _ig(self, x, w, m: int):
        # Midpoint rule: the path's ends are not sampled, and the black baseline is where every
        # ReLU sits at its kink (zero gradient for a bias-free layer), which the trapezoid
        # rule would weigh by half a step and so miss completeness by 1 / (2 steps).
        alphas = ((np.arange(m) + 0.5) / m).astype(np.float32)
        path = (alphas[None, :, None, None, None] * x[:, None]).reshape(-1, *x.shape[1:])
        grads = self.gradient(path, np.repeat(w, m, axis=0)).reshape(len(x), m, *x.shape[1:])
        return (grads.mean(axis=1) * x).sum(axis=-1)

    def integrated_gradients(self, x, w, return_check: bool = False,
                             tolerance: float = COMPLETENESS_TOLERANCE,
                             max_steps: int = 1024):
        """Maps (N, H, W). The path is sampled at `ig_steps` points; an image whose map misses
        completeness by more than `tolerance` (relative) is done again with twice the points,
        up to `max_steps` (a ReLU network's gradient jumps along the path, so a few images
        need more); `tolerance` None: no redoing. With `return_check`, also {"sum", "delta", "relative_error", "steps"}
        (N,): the map's sum, f(x) - f(0), |sum - delta| / max(|delta|, 1e-6), points used."""
        maps = self._ig(x, w, self.ig_steps)
        if tolerance is None and not return_check:  # the plain estimate (randomisation check)
            return maps
        delta = self.target(x, w) - self.target(np.zeros_like(x), w)
        steps = np.full(len(x), self.ig_steps)

        def error(m, d):
            return np.abs(m.reshape(len(m), -1).sum(axis=1) - d) / np.maximum(np.abs(d), 1e-6)

        err = error(maps, delta)
        while tolerance is not None and (err > tolerance).any() and steps.max() < max_steps:
            redo = np.flatnonzero(err > tolerance)
            m = int(steps[redo].max()) * 2
            maps[redo] = self._ig(x[redo], w[redo], m)
            steps[redo] = m
            err[redo] = error(maps[redo], delta[redo])
        if not return_check:
            return maps
        return maps, {"sum": maps.reshape(len(x), -1).sum(axis=1), "delta": delta,
                      "relative_error": err, "steps": steps}

    def gradcam(self, x, w) -> dict:
        """{"gradcam:<conv layer>": maps (N, H, W)} for every conv layer."""
        cams = _in_chunks(self._cams, self.rows, x, w)
        return {f"gradcam:{name}": cams[:, i] for i, name in enumerate(self.conv_names)}

    def occlusion(self, x, w):
        h, wd = self.input_shape[:2]
        p, s = self.patch, self.stride
        corners = [(top, left) for top in range(0, h - p + 1, s) for left in range(0, wd - p + 1, s)]
        masks = np.ones((len(corners), h, wd), np.float32)
        for k, (top, left) in enumerate(corners):
            masks[k, top:top + p, left:left + p] = 0.0
        hole = 1.0 - masks  # (patches, H, W): 1 inside the patch
        cover = hole.sum(axis=0)
        # A patch over black pixels changes nothing (drop 0): only patches with ink are run,
        # together with the image itself, so that f and its occluded copies share one function.
        ink = np.tensordot(np.abs(x).sum(axis=-1), hole, axes=([1, 2], [1, 2])) > 0  # (N, patches)
        pairs = np.argwhere(ink)
        batch = np.concatenate([x, x[pairs[:, 0]] * masks[pairs[:, 1]][..., None]])
        f = self.target(batch, np.concatenate([w, w[pairs[:, 0]]]))
        drop = np.zeros((len(x), len(corners)), np.float32)
        drop[pairs[:, 0], pairs[:, 1]] = f[:len(x)][pairs[:, 0]] - f[len(x):]
        maps = np.tensordot(drop, hole, axes=([1], [0]))
        return (maps / np.maximum(cover, 1.0)).astype(np.float32)

    def all_maps(self, x, w, methods=None, with_check: bool = True):
        """{method: maps (N, H, W) float32} for `methods` (default: METHODS and every Grad-CAM),
        and the integrated-gradients completeness check (or None)."""
        x = np.asarray(x, np.float32)
        w = np.asarray(w, np.float32)
        wanted = list(methods) if methods is not None else [*METHODS, "gradcam"]
        out, check = {}, None
        if {"saliency", "gradient_x_input"} <= set(wanted):  # one gradient serves both
            grad = self.gradient(x, w)
            out["saliency"] = np.abs(grad).max(axis=-1)
            out["gradient_x_input"] = (grad * x).sum(axis=-1)
        for name in wanted:
            if name in out:
                continue
            if name == "integrated_gradients" and with_check:
                out[name], check = self.integrated_gradients(x, w, return_check=True)
            elif name == "gradcam" or name.startswith("gradcam:"):
                cams = self.gradcam(x, w)
                out.update(cams if name == "gradcam" else {name: cams[name]})
            elif name == "integrated_gradients":
                out[name] = self.integrated_gradients(x, w, tolerance=None)
            else:
                out[name] = getattr(self, name)(x, w)
        return {k: np.asarray(v, np.float32) for k, v in out.items()}, check
