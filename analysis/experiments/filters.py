"""Shared tools of the filter experiments: correlations between filters, Hungarian matching of
two filter banks, and drawing kernels (a row of axes, or a whole grid on one axes).

Filters are compared by Pearson correlation because it ignores scale and offset: two kernels
that detect the same pattern correlate near 1 even if one has larger weights.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def pearson(a, b) -> float:
    """Pearson correlation of two arrays of the same size (flattened); 0 if one is constant."""
    return float(correlation_matrix(np.ravel(a)[:, None], np.ravel(b)[:, None])[0, 0])


def correlation_matrix(a, b):
    """Pearson correlation of every column of `a` (n, p) with every column of `b` (n, q).

    Returns
    -------
    array (p, q)
        Columns that never vary (dead units) correlate 0 with everything.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    za, zb = a - a.mean(axis=0), b - b.mean(axis=0)
    na, nb = np.linalg.norm(za, axis=0), np.linalg.norm(zb, axis=0)
    na[na == 0] = np.inf
    nb[nb == 0] = np.inf
    return (za / na).T @ (zb / nb)


def match_filters(corr):
    """Hungarian matching of filters of run A (rows) to run B (columns) maximising total correlation.

    Parameters
    ----------
    corr : array (p, p)
        corr[i, j] = correlation of filter i of A with filter j of B.

    Returns
    -------
    perm : int array (p,)
        A's filter i is matched to B's filter perm[i].
    matched : array (p,)
        corr[i, perm[i]].
    """
    rows, cols = linear_sum_assignment(corr, maximize=True)
    perm = cols[np.argsort(rows)]
    return perm, corr[np.arange(len(perm)), perm]


def kernels_as_columns(kernel):
    """Conv kernel (kh, kw, c_in, c_out) -> (kh*kw*c_in, c_out), one filter per column."""
    return kernel.reshape(-1, kernel.shape[-1])


def activations_as_columns(maps):
    """Feature maps (N, H, W, C) -> (N*H*W, C), one map per column."""
    return maps.reshape(-1, maps.shape[-1])


def draw_kernels(axes, kernels, titles=None, cmap="RdBu_r", symmetric=True):
    """Draw 2-D kernels (k, h, w) on a row of axes; red positive, blue negative, 0 white.

    Each kernel gets its own symmetric colour range, so the pattern (not the scale) shows.
    """
    for i, (ax, k) in enumerate(zip(axes, kernels)):
        lim = np.abs(k).max() or 1.0
        ax.imshow(k, cmap=cmap, vmin=-lim if symmetric else None, vmax=lim if symmetric else None)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)


def draw_kernel_grid(ax, kernels, titles, cols=8, scale=8):
    """Draw 2-D kernels (k, h, w) as one tiled image on `ax`, a title above each tile; red
    positive, blue negative, 0 white, each kernel in its own symmetric range (as `draw_kernels`).

    One image and k labels instead of k axes: a 32-kernel grid of axes took ~1 s to build and
    save on a 2-core AMD EPYC.
    """
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    from analysis.plots import mosaic

    k, h, w = kernels.shape
    lim = np.abs(kernels).reshape(k, -1).max(axis=1)
    scaled = kernels / np.where(lim > 0, lim, 1.0)[:, None, None]
    pad, row_pad = 3 * scale // 4, 3 * scale // 2
    ax.imshow(mosaic(scaled.transpose(1, 2, 0), cols=cols, pad=pad, scale=scale, row_pad=row_pad),
              cmap=_white_gaps("RdBu_r"), vmin=-1, vmax=1, interpolation="nearest")
    th, tw = h * scale, w * scale
    frames = []
    for i, title in enumerate(titles):
        r, q = divmod(i, cols)
        x, y = q * (tw + pad) - 0.5, r * (th + row_pad) - 0.5
        frames.append(Rectangle((x, y), tw, th))
        ax.text(x + tw / 2, y - 1, title, fontsize=7, ha="center", va="bottom")
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="black", linewidth=0.8))
    left, right = ax.get_xlim()
    ax.set_xlim(left - 1, right + 1)  # the outer frames whole
    ax.set_ylim(ax.get_ylim()[0] + 1, -row_pad)  # and room for the first row's titles
    ax.axis("off")


def _white_gaps(name):
    import matplotlib.pyplot as plt

    return plt.get_cmap(name).with_extremes(bad="white")
