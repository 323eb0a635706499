"""The explorer's causal effects: zero one unit, run the rest of the network (arrays only).

Zeroing a unit means its output (after its activation) is 0 at every position; for an output
unit its logit is set to 0 before the softmax. `causal_effects` does it for every unit of every
unit layer of the model (`mnist_cnn.network.describe`) and sums, per class, how often the
prediction is right and the probability of the true class.

Any accepted model: for each unit, the layer's output with that channel set to zero goes
through the rest of the network (`head_model`). The series' network has a faster path with the
same numbers: the change that zeroing makes to the next layer's pre-activation is subtracted
(for a conv map, a one-channel convolution of the pooled map with its slice of the next kernel),
and only the rest of the network is run.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from analysis.explore.compute import logit_cut, outputs_by_name, weights_of
from mnist_cnn.model import head_model, is_series_network, sub_model
from mnist_cnn.network import describe


def _sums(p, onehot):
    """(correct, true-class probability) summed per class: (units, K) each."""
    correct = tf.cast(tf.equal(tf.argmax(p, -1), tf.argmax(onehot, -1)[None]), tf.float32)
    p_true = tf.reduce_sum(p * onehot[None], axis=-1)
    return tf.matmul(correct, onehot), tf.matmul(p_true, onehot)


def _per_unit(fn, units):
    """fn(c) for c = 0..units-1 in a graph loop (a small graph: traced once, not units times)."""
    return tf.map_fn(fn, tf.range(units), fn_output_signature=tf.float32, parallel_iterations=1)


def _general_fn(model, net):
    cut, names, feeds, wo, bo = logit_cut(model, net)
    heads = {i.name: head_model(model, i.name) for i in net.units[:-1]}
    k = net.num_classes

    def zeroed(layer, out, onehot):
        channels = out.shape[-1]

        def without(c):
            keep = 1.0 - tf.one_hot(c, channels, dtype=tf.float32)
            return heads[layer](out * keep, training=False)
        return _sums(_per_unit(without, channels), onehot)

    @tf.function(input_signature=[tf.TensorSpec([None, *net.input_shape], tf.float32),
                                  tf.TensorSpec([None, k], tf.float32)],
                 autograph=False)  # plain TensorFlow: no source conversion
    def batch(x, onehot):
        outs = outputs_by_name(cut, names, x)
        logits = tf.matmul(outs[feeds], wo) + bo
        keep = 1.0 - tf.eye(k)[:, None, :]  # output unit j: its logit set to 0
        result = {"base": _sums(tf.nn.softmax(logits)[None], onehot),
                  net.output_layer.name: _sums(tf.nn.softmax(logits[None] * keep), onehot)}
        for layer in heads:
            result[layer] = zeroed(layer, outs[layer], onehot)
        return result
    return batch


def _series_fn(model, net):
    """The fast path for the series' network (conv-pool-conv-pool-conv-flatten-dense-dense,
    'valid' 3x3 convs, 2x2 pools); sizes read from the model."""
    c1, c2, c3 = net.conv_layers
    d1, out = net.dense_layers
    w = {name: tuple(map(tf.constant, pair)) for name, pair in weights_of(model).items()}
    cut = sub_model(model, [net.layers[c1.index + 1].name, net.layers[c2.index + 1].name,
                            c3.name, d1.name])
    (w2, b2), (w3, b3), (wd, bd), (wo, bo) = w[c2.name], w[c3.name], w[d1.name], w[out.name]
    taps = c2.kernel_size[0] * c2.kernel_size[1]
    side3 = c3.output_shape[0] * c3.output_shape[1]
    k = net.num_classes
    wd9 = tf.reshape(wd, [side3, c3.channels, d1.channels])  # Flatten: (row*W + col)*C + channel
    w2k = tf.transpose(tf.reshape(w2, [taps, c1.channels, c2.channels]), [1, 0, 2])  # (in, tap, out)
    w3k = tf.transpose(tf.reshape(w3, [taps, c2.channels, c3.channels]), [1, 0, 2])
    kh = c2.kernel_size[0]
    # the second pool (2x2, valid) reads only the first 2 * floor(H / 2) rows and columns
    used = 2 * (c2.output_shape[0] // 2)

    def from_dense_pre(z):
        return tf.nn.softmax(tf.matmul(tf.nn.relu(z), wo) + bo)

    def from_conv3_pre(z):
        return from_dense_pre(tf.matmul(tf.reshape(tf.nn.relu(z), [-1, side3 * c3.channels]), wd) + bd)

    def columns(pooled, size):
        """(channels, B*size*size, taps): each channel's kxk input patches at the first
        size x size output positions, the k=taps side of a GEMM."""
        cols = tf.stack([pooled[:, i:i + size, j:j + size, :] for i in range(kh) for j in range(kh)], 3)
        return tf.transpose(tf.reshape(cols, [-1, taps, pooled.shape[-1]]), [2, 0, 1])

    # A map's share of the next convolution is a (positions x taps) @ (taps x outputs) product;
    # one unit at a time keeps every tensor small enough to stay in cache (3-4x faster on 2
    # cores than one batched product or a depthwise convolution for all units).
    def conv_1(p1, onehot):
        pre = tf.reshape((tf.nn.conv2d(p1, w2, 1, "VALID") + b2)[:, :used, :used, :], [-1, c2.channels])
        cols = columns(p1, used)

        def without(c):
            z = tf.reshape(pre - tf.matmul(tf.gather(cols, c), tf.gather(w2k, c)),
                           [-1, used, used, c2.channels])
            pooled = tf.nn.relu(tf.nn.max_pool2d(z, 2, 2, "VALID"))  # relu commutes with max
            return from_conv3_pre(tf.nn.conv2d(pooled, w3, 1, "VALID") + b3)
        return _sums(_per_unit(without, c1.channels), onehot)

    def conv_2(p2, onehot):
        pre = tf.reshape(tf.nn.conv2d(p2, w3, 1, "VALID") + b3, [-1, c3.channels])
        cols = columns(p2, c3.output_shape[0])
        return _sums(_per_unit(lambda c: from_conv3_pre(pre - tf.matmul(tf.gather(cols, c),
                                                                        tf.gather(w3k, c))),
                               c2.channels), onehot)

    def conv_3(m3, onehot):
        pre = tf.matmul(tf.reshape(m3, [-1, side3 * c3.channels]), wd) + bd
        share = tf.einsum("bpc,pcj->cbj", tf.reshape(m3, [-1, side3, c3.channels]), wd9)
        return _sums(from_dense_pre(pre[None] - share), onehot)

    def dense_1(h, logits, onehot):
        share = tf.transpose(h)[:, :, None] * wo[:, None, :]  # (units, B, K)
        return _sums(tf.nn.softmax(logits[None] - share), onehot)

    @tf.function(input_signature=[tf.TensorSpec([None, *net.input_shape], tf.float32),
                                  tf.TensorSpec([None, k], tf.float32)],
                 autograph=False)  # plain TensorFlow: no source conversion
    def batch(x, onehot):
        p1, p2, m3, h = cut(x, training=False)
        logits = tf.matmul(h, wo) + bo
        keep = 1.0 - tf.eye(k)[:, None, :]  # output unit j: its logit set to 0
        return {"base": _sums(tf.nn.softmax(logits)[None], onehot),
                c1.name: conv_1(p1, onehot), c2.name: conv_2(p2, onehot),
                c3.name: conv_3(m3, onehot), d1.name: dense_1(h, logits, onehot),
                out.name: _sums(tf.nn.softmax(logits[None] * keep), onehot)}
    return batch


def causal_effects(model, x, y, batch: int = 500) -> dict:
    """Per-class effect of zeroing each unit alone, on labelled images.

    Returns
    -------
    dict with base_accuracy (K,), base_probability (K,) (mean true-class probability per
    class), count (K,), base_accuracy_all, and per unit layer {"accuracy": (C, K),
    "probability": (C, K), "accuracy_all": (C,), "probability_all": (C,)}: the change
    (ablated - intact) in accuracy and mean true-class probability per class and over all images.
    """
    net = describe(model)
    step = (_series_fn if is_series_network(model) else _general_fn)(model, net)
    x = np.asarray(x, np.float32)
    onehot = np.eye(net.num_classes, dtype=np.float32)[np.asarray(y).astype(int)]
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
    for info in net.units:
        c, p = total[info.name]
        out[info.name] = {"accuracy": (c - base_c) / safe, "probability": (p - base_p) / safe,
                          "accuracy_all": (c.sum(axis=1) - base_c.sum()) / n,
                          "probability_all": (p.sum(axis=1) - base_p.sum()) / n}
    return out
