"""Layer activations and logit gradients for the concept analyses (any accepted model: the
layers come from `mnist_cnn.network.describe`)."""

from __future__ import annotations

import weakref

import numpy as np

PROBE_KINDS = ("conv", "max_pool", "avg_pool", "dense")
_EXTRACTORS = weakref.WeakKeyDictionary()


def probe_layers(net) -> list:
    """The conv, pool and hidden dense layers of a described network (the output is the class)."""
    return [i.name for i in net.layers[:-1] if i.kind in PROBE_KINDS]


def layer_outputs(model, names, x, batch: int = 1000) -> dict:
    """Outputs (float32) of the layers `names` on inputs x (N, 28, 28, 1): layer -> array."""
    from analysis.feature_maps import FeatureExtractor

    by_layers = _EXTRACTORS.setdefault(model, {})  # one trace per model and layer list
    key = (tuple(names), batch)
    if key not in by_layers:
        by_layers[key] = FeatureExtractor(model, list(names), batch_size=batch)
    return by_layers[key](x)


def logits_after(model, net, layer: str, acts):
    """The logits computed from `layer`'s output (a tf tensor): the layers after it, and the
    output Dense without its softmax (TCAV differentiates the logit, not the probability)."""
    import tensorflow as tf

    x = acts
    index = net.names.index(layer)
    for info in net.layers[index + 1:-1]:
        x = model.get_layer(info.name)(x, training=False)
    kernel, bias = model.get_layer(net.output_layer.name).get_weights()[:2]
    return tf.matmul(tf.reshape(x, (tf.shape(x)[0], -1)), kernel) + bias


def logit_gradients(model, net, layer: str, acts: np.ndarray, cls: int) -> np.ndarray:
    """d logit_cls / d (layer output) for each image: (N, layer size), flattened."""
    import tensorflow as tf

    a = tf.convert_to_tensor(acts, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(a)
        logit = logits_after(model, net, layer, a)[:, cls]
    return np.asarray(tape.gradient(logit, a)).reshape(len(acts), -1)


def pooled(acts: np.ndarray, window: int = 2) -> np.ndarray:
    """Maps (N, H, W, C) -> (N, H // window * W // window * C): average pooling over
    window x window cells (a last odd row or column dropped); dense outputs unchanged. The
    probes read these: fewer features than a whole map, still where each feature sits.

    Parameters
    ----------
    acts : (N, H, W, C) maps or (N, units) dense outputs; window : the pooling cell's side

    Returns
    -------
    (N, features) float32.
    """
    if acts.ndim == 2:
        return acts.astype(np.float32)
    n, h, w, c = acts.shape
    k = min(window, h, w)
    a = acts[:, :h // k * k, :w // k * k].astype(np.float32)
    a = a.reshape(n, h // k, k, w // k, k, c).mean(axis=(2, 4))
    return a.reshape(n, -1)


def peaks(acts: np.ndarray) -> np.ndarray:
    """A unit's activation on an image: the peak of its map (as the explorer reads it), or the
    dense unit's value: (N, units)."""
    return acts.max(axis=(1, 2)) if acts.ndim == 4 else acts
