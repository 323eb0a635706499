"""Figures of the analysis: activation grids, class samples, kernels, class means, ranking.

Every function takes arrays (computed elsewhere) and returns a Matplotlib figure; saving is the
caller's job (`mnist_cnn.fileio.save_figure`). The maps of a layer are drawn as one mosaic image
per panel rather than one axes per map: a 128-map grid is then a single `imshow`, which is
fast and gives one colour scale per figure for free.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize, TwoSlopeNorm  # noqa: E402


def grid_shape(n_maps: int) -> tuple:
    """(rows, cols) of a near-square grid with a power-of-two width: 32 -> 4x8, 64 -> 8x8,
    128 -> 8x16."""
    cols = 2 ** math.ceil(math.log2(max(n_maps, 1)) / 2)
    return math.ceil(n_maps / cols), cols


def tile_scale(height: int, target: int = 24) -> int:
    """Integer upsampling that brings a map to about `target` pixels (3x3 -> 8, 26x26 -> 1),
    so the one-pixel gaps and the index labels stay small next to tiny maps."""
    return max(1, round(target / height))


def mosaic(maps: np.ndarray, cols: int | None = None, pad: int = 1, scale: int = 1,
           row_pad: int | None = None) -> np.ndarray:
    """Tile the maps (H, W, C) row by row into one 2-D array, NaN between tiles.

    Parameters
    ----------
    maps : array (H, W, C)
    cols : int, optional
        Tiles per row (default from `grid_shape`).
    pad : int
        NaN pixels between tiles (drawn as background).
    scale : int
        Each map pixel becomes scale x scale pixels (nearest neighbour).
    row_pad : int, optional
        NaN pixels between rows of tiles, if not `pad` (room for labels, as in the OIP grid).

    Returns
    -------
    float32 array (rows * (H*scale + row_pad) - row_pad, cols * (W*scale + pad) - pad), with
    at least one row of tiles
    """
    if scale > 1:
        maps = np.repeat(np.repeat(maps, scale, axis=0), scale, axis=1)
    h, w, c = maps.shape
    rows, cols = grid_shape(c) if cols is None else (math.ceil(c / cols), cols)
    rows, row_pad = max(rows, 1), pad if row_pad is None else row_pad
    out = np.full((rows * (h + row_pad) - row_pad, cols * (w + pad) - pad), np.nan, np.float32)
    for i in range(c):
        r, q = divmod(i, cols)
        out[r * (h + row_pad):r * (h + row_pad) + h, q * (w + pad):q * (w + pad) + w] = maps[..., i]
    return out


def _mosaic_aspect(shape) -> float:
    """Width / height of the mosaic of maps with shape (H, W, C)."""
    h, w, c = shape
    rows, cols = grid_shape(c)
    scale = tile_scale(h)
    return (cols * (w * scale + 1)) / (rows * (h * scale + 1))


def _cmap(name):
    return plt.get_cmap(name).with_extremes(bad="white")  # white: the NaN gaps between tiles


def _draw_maps(ax, maps, norm, cmap, labels=True, fontsize=None):
    """Draw maps (H, W, C) as a mosaic on `ax`, the map index in each tile's corner."""
    scale = tile_scale(maps.shape[0])
    h, w, c = maps.shape[0] * scale, maps.shape[1] * scale, maps.shape[2]
    rows, cols = grid_shape(c)
    image = ax.imshow(mosaic(maps, scale=scale), cmap=_cmap(cmap), norm=norm,
                      interpolation="nearest")
    if labels:
        size = fontsize or (7 if cols <= 8 else 5.5)
        for i in range(c):
            r, q = divmod(i, cols)
            ax.text(q * (w + 1) - 0.5, r * (h + 1) - 0.5, str(i), fontsize=size, va="top",
                    ha="left", color="black",
                    bbox=dict(boxstyle="square,pad=0.08", fc="white", ec="none", alpha=0.75))
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def _draw_input(ax, image, title="input"):
    ax.imshow(np.asarray(image).squeeze(), cmap="gray_r", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_activation_grid(image, maps, layer: str, cmap="viridis", title=None):
    """All maps of one layer for one image, beside the input image.

    Parameters
    ----------
    image : array (28, 28) or (28, 28, 1), the input.
    maps : array (H, W, C), the layer's activations for that image.
    layer : str, used in the title.
    cmap : str, colormap of the maps.
    title : str, optional

    Returns
    -------
    matplotlib Figure (one colour scale for all maps, with a colour bar)
    """
    h, w, c = maps.shape
    rows, cols = grid_shape(c)
    aspect = _mosaic_aspect(maps.shape)
    grid_width = 8.5  # inches
    fig = plt.figure(figsize=(grid_width + 2.3, grid_width / aspect + 0.8))
    spec = fig.add_gridspec(1, 3, width_ratios=[1.6, grid_width, 0.2], wspace=0.04)
    _draw_input(fig.add_subplot(spec[0]), image)
    ax = fig.add_subplot(spec[1])
    norm = Normalize(0.0, max(float(np.max(maps)), 1e-6))
    mappable = _draw_maps(ax, maps, norm, cmap)
    ax.set_title(f"{title + ': ' if title else ''}{layer}, {c} maps of {h}x{w} "
                 "(map index in each corner)", fontsize=10)
    fig.colorbar(mappable, cax=fig.add_subplot(spec[2]), label="activation")
    return fig


def plot_class_samples(images_a, maps_a, images_b, maps_b, layer: str, label_a: int,
                       label_b: int, cmap="viridis", titles=None, per_row=3):
    """The series' part V figure for one layer: several images of each class, all their maps.

    Parameters
    ----------
    images_a, images_b : arrays (S, 28, 28[, 1]), sample images of class a and b.
    maps_a, maps_b : arrays (S, H, W, C), the layer's activations for them.
    layer : str
    label_a, label_b : int or str, the two classes, as the titles name them ("4", "Shirt").
    cmap : str
    titles : list of str, optional, one per image (a first), e.g. test-set indices.
    per_row : int, images per figure row.

    Returns
    -------
    matplotlib Figure: class a in the top rows, class b below, each image followed by its map
    mosaic; a single colour scale (0 to the largest activation in the figure) with a colour bar.
    """
    aspect = _mosaic_aspect(np.asarray(maps_a[0]).shape)  # width / height of one mosaic
    per_row = max(1, min(per_row, max(len(images_a), len(images_b))))
    rows_a, rows_b = math.ceil(len(images_a) / per_row), math.ceil(len(images_b) / per_row)
    unit = 5.2 / per_row * 3 / (0.6 + aspect)  # inches per mosaic height, ~16 in wide in all
    ratios = [0.6, aspect] * per_row + [0.06]
    fig = plt.figure(figsize=(sum(ratios) * unit + 0.8, (rows_a + rows_b) * unit * 1.18 + 0.7))
    spec = fig.add_gridspec(rows_a + rows_b, 2 * per_row + 1, width_ratios=ratios,
                            wspace=0.06, hspace=0.3)
    maps = list(maps_a) + list(maps_b)
    norm = Normalize(0.0, max(float(max(np.max(m) for m in maps)), 1e-6))
    titles = titles or [""] * len(maps)
    mappable = None
    for i, (image, m) in enumerate(zip(list(images_a) + list(images_b), maps)):
        first_b = i >= len(images_a)
        j = i - len(images_a) if first_b else i
        r, q = divmod(j, per_row)
        r += rows_a if first_b else 0
        label = label_b if first_b else label_a
        _draw_input(fig.add_subplot(spec[r, 2 * q]), image, title=f"a {label} {titles[i]}".strip())
        mappable = _draw_maps(fig.add_subplot(spec[r, 2 * q + 1]), m, norm, cmap,
                              labels=(j == 0), fontsize=5)
    fig.colorbar(mappable, cax=fig.add_subplot(spec[:, -1]), label="activation")
    fig.suptitle(f"{layer}: {len(images_a)} test images of {label_a} (top) and {len(images_b)} "
                 f"of {label_b} (bottom), one colour scale; map index as in each class's first "
                 "mosaic", fontsize=10)
    return fig


def plot_kernels(kernels: np.ndarray, layer="conv_1"):
    """First-layer kernels (kh, kw, 1, C) as a grid, one symmetric diverging colour scale.

    Returns
    -------
    matplotlib Figure; red = positive weight (responds to ink), blue = negative.
    """
    k = np.asarray(kernels)[:, :, 0, :]
    c = k.shape[-1]
    rows, cols = grid_shape(c)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.05 + 0.8, rows * 1.1 + 0.4),
                             squeeze=False)
    limit = float(np.abs(k).max()) or 1.0
    norm = TwoSlopeNorm(0.0, -limit, limit)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= c:
            ax.axis("off")
            continue
        mappable = ax.imshow(k[..., i], cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_title(str(i), fontsize=8, pad=2)
    fig.colorbar(mappable, ax=axes, fraction=0.025, pad=0.02, label="weight")
    fig.suptitle(f"{layer} kernels ({k.shape[0]}x{k.shape[1]}), one colour scale", fontsize=10)
    return fig


def plot_class_means(mean_a, mean_b, label_a: int, label_b: int, layer="conv_3",
                     cmap="viridis", highlight=()):
    """Class-mean maps of one layer for both digits and their difference.

    Parameters
    ----------
    mean_a, mean_b : arrays (H, W, C), mean maps over all test images of each class.
    label_a, label_b : int
    layer : str
    cmap : str, for the two means (shared scale); the difference uses a diverging scale.
    highlight : sequence of int, map indices to frame (e.g. the top-ranked maps).

    Returns
    -------
    matplotlib Figure with three panels and two colour bars.
    """
    h, w, c = mean_a.shape
    rows, cols = grid_shape(c)
    aspect = _mosaic_aspect(mean_a.shape)
    scale = tile_scale(h)
    width = 8.5  # inches of one mosaic
    fig = plt.figure(figsize=(width + 1.2, 3 * (width / aspect + 0.45)))
    spec = fig.add_gridspec(3, 2, width_ratios=[width, 0.2], hspace=0.15, wspace=0.03)
    norm = Normalize(0.0, max(float(max(mean_a.max(), mean_b.max())), 1e-6))
    diff = mean_a - mean_b
    limit = max(float(np.abs(diff).max()), 1e-6)
    panels = [(mean_a, f"mean {layer} maps over all test images of {label_a}", norm, cmap),
              (mean_b, f"mean {layer} maps over all test images of {label_b}", norm, cmap),
              (diff, f"difference: mean({label_a}) - mean({label_b})",
               TwoSlopeNorm(0.0, -limit, limit), "RdBu_r")]
    for r, (maps, title, pnorm, pcmap) in enumerate(panels):
        ax = fig.add_subplot(spec[r, 0])
        mappable = _draw_maps(ax, maps, pnorm, pcmap, fontsize=5.5)
        ax.set_title(title, fontsize=10)
        for i in highlight:
            rr, q = divmod(int(i), cols)
            ax.add_patch(plt.Rectangle((q * (w * scale + 1) - 0.5, rr * (h * scale + 1) - 0.5),
                                       w * scale, h * scale,
                                       fill=False, ec="red", lw=1.5))
        if r != 1:  # the two class means share the upper colour bar
            fig.colorbar(mappable, cax=fig.add_subplot(spec[0:2, 1] if r == 0 else spec[2, 1]),
                         label="mean activation" if r == 0 else "difference of means")
    return fig


def plot_ranking(auc: np.ndarray, ranking: np.ndarray, label_a: int, label_b: int,
                 layer="conv_3", top=16):
    """ROC AUC of every map (DIGIT vs CONTRAST), maps sorted by separation; top maps labelled.

    Returns
    -------
    matplotlib Figure
    """
    auc = np.asarray(auc)
    order = np.asarray(ranking)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    colors = np.where(np.arange(len(order)) < top, "tab:red", "tab:gray")
    ax.bar(np.arange(len(order)), auc[order] - 0.5, bottom=0.5, color=colors, width=0.85)
    ax.axhline(0.5, color="black", lw=0.8)
    for pos, c in enumerate(order[:top]):
        ax.text(pos, auc[c] + (0.01 if auc[c] >= 0.5 else -0.01), str(c), ha="center",
                va="bottom" if auc[c] >= 0.5 else "top", fontsize=6.5, rotation=90)
    ax.set_ylim(0, 1)
    ax.set_xlim(-1, len(order))
    ax.set_xlabel(f"{layer} maps, ranked by separation |2 AUC - 1| (red: top {top}, index above)")
    ax.set_ylabel(f"ROC AUC ({label_a} vs {label_b})")
    ax.set_title(f"AUC > 0.5: the map is more active on {label_a}; < 0.5: more active on {label_b}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_ablation(result: dict, label_a: int, label_b: int, layer="conv_3"):
    """Accuracy and true-class probability on each class after zeroing k top-ranked vs k
    random maps.

    Parameters
    ----------
    result : dict from `analysis.compare.ablation`.

    Returns
    -------
    matplotlib Figure, 2x2 panels: rows accuracy / mean true-class probability, columns the
    two classes.
    """
    rows = result["rows"]
    ks = [r["k"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.6), sharex=True)
    measures = (("accuracy", "accuracy"), ("probability", "mean probability of the true class"))
    for (measure, ylabel), row_axes in zip(measures, axes):
        for ax, side, label in zip(row_axes, ("a", "b"), (label_a, label_b)):
            key = f"{measure}_{side}"
            stat = {s: np.array([r[f"random_{key}_{s}"] for r in rows]) for s in ("mean", "min", "max")}
            ax.plot(ks, [r[f"ranked_{key}"] for r in rows], "o-", color="tab:red",
                    label="top-k ranked maps zeroed")
            ax.plot(ks, stat["mean"], "s-", color="tab:gray",
                    label=f"k random maps zeroed (mean, min-max of {result['random_draws']})")
            ax.fill_between(ks, stat["min"], stat["max"], color="tab:gray", alpha=0.25)
            ax.axhline(result["baseline"][key], color="black", ls=":", lw=1, label="no ablation")
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.grid(alpha=0.3)
            if measure == "accuracy":
                ax.set_title(f"test images of {label}")
            else:
                ax.set_xlabel(f"k ({layer} maps set to zero)")
        row_axes[0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_misclassified(images, predicted, confidence, label, limit=60, titles=None,
                       class_names=None, noun="digit"):
    """Misclassified test images of one class, each titled with prediction and confidence.

    Parameters
    ----------
    images : array (M, 28, 28[, 1]), ordered as they should appear (e.g. most confident first).
    predicted : int array (M,)
    confidence : float array (M,), probability of the predicted class.
    label : int or str, the true class (as the title should name it).
    limit : int, at most this many are drawn.
    titles : list of str, optional, a first title line per image (e.g. its test index).
    class_names : sequence of str, optional; predictions are shown by name (default: index).
    noun : str, what a class is called ("digit", "class").

    Returns
    -------
    matplotlib Figure
    """
    n = min(len(images), limit)
    cols = min(max(n, 1), 10)
    rows = max(math.ceil(n / cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.15, rows * (1.5 if titles else 1.35) + 0.5),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(np.asarray(images[i]).squeeze(), cmap="gray_r", interpolation="nearest")
        first = f"{titles[i]}\n" if titles else ""
        guess = class_names[int(predicted[i])] if class_names is not None else int(predicted[i])
        ax.set_title(f"{first}-> {guess} ({confidence[i]:.0%})", fontsize=8 if len(str(guess)) < 6
                     else 6.5, pad=2)
    shown = f"the {n} most confident of {len(images)}" if len(images) > n else f"all {n}"
    fig.suptitle(f"misclassified test images of {label}: {shown} "
                 f"(predicted {noun}, model's probability for it)", fontsize=9)
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "none", ha="center", va="center")
    return fig
