"""The explorer's circuit: the strongest weights into and out of every unit (arrays only)."""

from __future__ import annotations

import numpy as np

from analysis.explore.compute import BELOW, LAYERS


def connection_strength(weights: dict) -> dict:
    """{layer: (C_below, C) strength of each connection from the layer below}.

    Conv and conv_3 -> dense_1: the L2 norm of the weights from one map to one unit (over the
    kernel's 3x3 positions, or the 9 positions of the flattened conv_3 map). dense_1 -> output:
    the weight itself (signed).
    """
    out = {}
    for layer in ("conv_2", "conv_3"):
        out[layer] = np.sqrt((weights[layer][0] ** 2).sum(axis=(0, 1)))
    out["dense_1"] = np.sqrt((weights["dense_1"][0].reshape(9, 128, 70) ** 2).sum(axis=0))
    out["output"] = weights["output"][0].copy()
    return out


def circuit(weights: dict, dense_class_mean: np.ndarray, k: int = 5) -> dict:
    """Strongest links of every unit.

    Parameters
    ----------
    weights : from `weights_of`
    dense_class_mean : (70, 10) mean dense_1 activation per class (from `unit_statistics`)
    k : links per direction

    Returns
    -------
    {layer: {"inputs": (C, k) unit indices of the layer below, "input_strength": (C, k),
    "outputs": (C, k) indices of the layer above, "output_strength": (C, k)}} (absent where
    there is no layer below / above), "conv_1_kernels" (32, 3, 3) and for output the inputs
    ranked by drive: the mean contribution activation x weight of each dense_1 unit to the
    logit, over the test images of that digit.
    """
    strength = connection_strength(weights)
    drive = dense_class_mean * weights["output"][0]  # (70, 10): unit i's mean push on logit k
    out = {layer: {} for layer in LAYERS}
    for layer, s in strength.items():
        below = BELOW[layer]
        into = drive if layer == "output" else s  # (C_below, C)
        order = np.argsort(-into, axis=0, kind="stable")[:k].T  # per unit of `layer`
        out[layer]["inputs"] = order
        out[layer]["input_strength"] = np.take_along_axis(into.T, order, axis=1)
        rank = np.abs(s) if layer == "output" else s  # output weights: strongest either sign
        order = np.argsort(-rank, axis=1, kind="stable")[:, :k]  # per unit of `below`
        out[below]["outputs"] = order
        out[below]["output_strength"] = np.take_along_axis(s, order, axis=1)
    out["conv_1_kernels"] = np.transpose(weights["conv_1"][0][:, :, 0, :], (2, 0, 1))
    return out
