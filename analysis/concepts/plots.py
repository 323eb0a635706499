"""Figures of the concept tables (Matplotlib; the page writer saves them): probe scores across
the layers, trained against random weights, and the causal check as bars."""

from __future__ import annotations

import numpy as np


def plot_probes(probes: list):
    """One panel per measurement: the probe's held-out score in each layer, for the trained
    network and for the same architecture with random weights.

    Parameters
    ----------
    probes : `run(...)["probes"]`, rows with layer, concept, metric, trained, random

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    concepts = list(dict.fromkeys(r["concept"] for r in probes))
    layers = list(dict.fromkeys(r["layer"] for r in probes))
    cols = min(3, len(concepts))
    rows = -(-len(concepts) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.4 * rows), squeeze=False,
                             sharex=True)
    at = {(r["concept"], r["layer"]): r for r in probes}
    x = np.arange(len(layers))
    for ax, concept in zip(axes.flat, concepts):
        got = [at[concept, layer] for layer in layers]
        ax.plot(x, [r["trained"] for r in got], "o-", color="#1f77b4", label="trained")
        ax.plot(x, [r["random"] for r in got], "s--", color="#999999", label="random weights")
        ax.set_title(f"{concept} ({got[0]['metric']})", fontsize=9)
        ax.set_ylim(min(0.0, *(r["random"] for r in got), *(r["trained"] for r in got)), 1.0)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(concepts):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xticks(x, layers, rotation=45, ha="right", fontsize=7)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Linear probes per layer: held-out score", fontsize=10)
    fig.tight_layout()
    return fig


def plot_causal(causal: dict):
    """Accuracy before and after zeroing the loop units and random units, per digit group.

    Parameters
    ----------
    causal : `run(...)["causal"]`

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    groups = ("with loops", "without")
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    width = 0.26
    x = np.arange(len(groups))
    bars = (("all units", [causal[g]["base"] for g in groups], None, "#bbbbbb"),
            (f"{causal['k']} loop units zeroed", [causal[g]["loop_units"] for g in groups], None,
             "#d62728"),
            (f"{causal['k']} random units zeroed (mean, std of {causal['draws']})",
             [causal[g]["random_mean"] for g in groups],
             [causal[g]["random_std"] for g in groups], "#1f77b4"))
    for i, (label, values, err, colour) in enumerate(bars):
        ax.bar(x + (i - 1) * width, values, width, yerr=err, label=label, color=colour,
               capsize=3)
    ax.set_xticks(x, [f"digits {g}\n({causal[g]['images']} images)" for g in groups], fontsize=8)
    low = min(min(v) for _, v, _, _ in bars)
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_title(f"Causal check in {causal['layer']}", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
