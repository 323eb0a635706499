"""Figures of the OIPs (arrays in, Matplotlib figure out): the OIP grid, class images, carving.

The OIP grid is one `analysis.plots.mosaic` image (one `imshow`, grey scale: black = 1, like ink
on paper) with room above each tile for its label.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.plots import mosaic


def _grid_columns(n: int) -> int:
    return min(n, 16 if n > 64 else 8)


def plot_oips(images, maps, activation, layer: str, data_max=None, labels=None, title=None,
              dead=None):
    """Grid of OIPs, each tile labelled with its map index and final activation.

    Parameters
    ----------
    images : array (N, 28, 28) in [0, 1]
    maps, activation : arrays (N,)
    layer : str
    data_max : array (N,), optional; tiles whose activation does not exceed it get a red label.
    labels : list of str, optional, extra text per tile (e.g. "AUC 0.93").
    title : str, optional
    dead : bool array (N,), optional
        Maps dead on the data, labelled "dead" (`compute_oips`'s "dead": only for ReLU layers).

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
    # One blank column between tiles; a gap above every row of tiles for its labels.
    tiles = np.moveaxis(np.asarray(images, np.float32).reshape(n, tile, tile), 0, -1)
    canvas = np.vstack([np.full((gap, cols * (tile + 1) - 1), np.nan, np.float32),
                        mosaic(tiles, cols, pad=1, row_pad=gap)])
    scale = 0.95 if cols <= 8 else 0.72
    fig, ax = plt.subplots(figsize=(cols * scale + 0.4, rows * scale * (tile + gap) / tile + 0.5))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")  # white gaps between tiles
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    size = 6.5 if cols <= 8 else 5
    for i in range(n):
        r, q = divmod(i, cols)
        weak = data_max is not None and np.isfinite(data_max[i]) and not activation[i] > data_max[i]
        text = f"{int(maps[i])}: {activation[i]:.3g}" + (" dead" if dead is not None and dead[i] else "")
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


def plot_class_images(images, digits, logit, probability, names=None):
    """The class images side by side, titled with the class, its logit and softmax probability
    (`names`, optional: how to name each class, e.g. "Shirt"; default its index).

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(1.9 * len(images), 2.3), squeeze=False)
    names = names if names is not None else [int(d) for d in digits]
    for ax, img, name, z, p in zip(axes[0], images, names, logit, probability):
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"class {name}\nlogit {z:.1f}, p {p:.3f}", fontsize=8)
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
