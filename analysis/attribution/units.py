"""Which part of its receptive field drives a unit (issue #20, item 5: the explorer's unit pages).

For each live unit and each of its top test images: gradient x input of the unit's
pre-activation (`mnist_cnn.model.pre_activation_model`), at the map's peak on that image for a
conv unit, so the map lies inside the peak's receptive field. Gradient x input is one gradient
per image: the 2,700 (unit, image) pairs of the series' network take about a second, where
integrated gradients would take sixteen times that in every `make explore`.

Arrays in, arrays out: the pictures of these maps are the explorer's
(`analysis.explore.build.write_attribution_strips`), since only the page writer knows its folder.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mnist_cnn.model import pre_activation_model
from mnist_cnn.network import describe


def _gradient(cut, x, onehot):
    """d (cut(x) . onehot) / dx, eagerly: one call per layer on a few thousand images, where
    a compiled function per layer would only add tracing (and TensorFlow's retracing warning)."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reshape(cut(x, training=False), [x.shape[0], -1])
        f = tf.reduce_sum(out * onehot, axis=1)
    return tape.gradient(f, x).numpy()


def unit_attributions(model, units: list, x: np.ndarray, rows: int = 2048) -> dict:
    """{unit name: (k, H, W) gradient x input of the unit on its k top images}.

    Parameters
    ----------
    model : keras.Model; units : the explorer's unit records (name, layer, index, dead, top:
    [{"index": test index}]); x : test images (N, H, W, 1) in [0, 1].
    """
    net = describe(model)
    out = {}
    for info in net.units:
        mine = [u for u in units if u["layer"] == info.name and not u["dead"] and u["top"]]
        if not mine:
            continue
        cut = pre_activation_model(model, info.name)
        size = int(np.prod(cut.outputs[0].shape[1:]))
        pairs = [(k, t["index"]) for k, u in enumerate(mine) for t in u["top"]]
        images = x[[i for _, i in pairs]].astype(np.float32)
        channel = np.array([mine[k]["index"] for k, _ in pairs])
        pre = np.concatenate([np.asarray(cut(images[i:i + rows], training=False))
                              for i in range(0, len(images), rows)])
        pre = pre.reshape(len(images), -1, pre.shape[-1])  # (pairs, positions, channels)
        peak = pre[np.arange(len(images)), :, channel].argmax(axis=1)  # (pairs,)
        onehot = np.zeros((len(images), size), np.float32)
        onehot[np.arange(len(images)), peak * pre.shape[-1] + channel] = 1.0
        g = np.concatenate([_gradient(cut, images[i:i + rows], onehot[i:i + rows])
                            for i in range(0, len(images), rows)])
        maps = (g * images).sum(axis=-1)
        start = 0
        for u in mine:
            out[u["name"]] = maps[start:start + len(u["top"])]
            start += len(u["top"])
    return out

