"""The explorer's circuit: the strongest weights into and out of every unit (arrays only).

The unit layers and what connects them come from the model's description
(`mnist_cnn.network.describe`): each unit layer reads the unit layer below it through the
layers between them (pools, batch norm, dropout keep the channels; a flatten lays the maps'
positions out in the kernel's rows).
"""

from __future__ import annotations

import numpy as np


def signed(net, layer: str) -> bool:
    """Whether a unit layer has one weight per connection from the layer below (a dense layer
    after a dense layer or a global pooling): its links are weights, signed; otherwise (a conv
    kernel, a dense layer after a flatten) they are weight norms over positions."""
    info = net.layer(layer)
    below = net.below(layer)
    if info.kind != "dense" or below is None:
        return False
    return not any(i.kind == "flatten" for i in net.between(below.name, layer))


def connection_strength(weights: dict, net) -> dict:
    """{layer: (C_below, C) strength of each connection from the unit layer below}.

    Conv: the L2 norm of the weights from one map to one unit over the kernel's positions; a
    dense layer after a flatten: the L2 norm over the flattened map's positions; a dense layer
    after a dense layer (or a global pooling): the weight itself (signed).
    """
    out = {}
    for info in net.units:
        below = net.below(info.name)
        if below is None:
            continue
        kernel = weights[info.name][0]
        if info.kind == "conv":
            out[info.name] = np.sqrt((kernel ** 2).sum(axis=(0, 1)))
        elif signed(net, info.name):
            out[info.name] = kernel.copy()
        else:
            by_position = kernel.reshape(-1, below.channels, info.channels)
            out[info.name] = np.sqrt((by_position ** 2).sum(axis=0))
    return out


def circuit(weights: dict, net, class_means: dict, k: int = 5) -> dict:
    """Strongest links of every unit.

    Parameters
    ----------
    weights : from `compute.weights_of`
    net : `mnist_cnn.network.Network` of the model
    class_means : {unit layer: (C, K) mean activation per class} (from `unit_statistics`); the
        layer below the output is used
    k : links per direction

    Returns
    -------
    {layer: {"inputs": (C, k) unit indices of the layer below, "input_strength": (C, k),
    "outputs": (C, k) indices of the layer above, "output_strength": (C, k)}} (absent where
    there is no layer below / above), "kernels" (C, kh, kw) of the first conv layer (on the
    image), and for the output layer, when it reads a dense layer, the inputs ranked by drive:
    the mean contribution activation x weight of each unit below to the logit, over the test
    images of that class.
    """
    strength = connection_strength(weights, net)
    output = net.output_layer.name
    out = {info.name: {} for info in net.units}
    for layer, s in strength.items():
        below = net.below(layer).name
        drive = layer == output and signed(net, layer)
        into = class_means[below] * weights[output][0] if drive else s  # (C_below, C)
        order = np.argsort(-into, axis=0, kind="stable")[:k].T  # per unit of `layer`
        out[layer]["inputs"] = order
        out[layer]["input_strength"] = np.take_along_axis(into.T, order, axis=1)
        rank = np.abs(s) if signed(net, layer) else s  # weights: strongest either sign
        order = np.argsort(-rank, axis=1, kind="stable")[:, :k]  # per unit of `below`
        out[below]["outputs"] = order
        out[below]["output_strength"] = np.take_along_axis(s, order, axis=1)
    if net.conv_layers:
        out["kernels"] = np.transpose(weights[net.conv_layers[0].name][0][:, :, 0, :], (2, 0, 1))
    return out
