"""An image of a digit made the way MNIST's digits were made (LeCun et al.): the ink's bounding
box scaled to fit 20x20 keeping its aspect, anti-aliased, then placed in a 28x28 field so that
its centre of mass is at the centre.

`to_mnist_field` is the one definition: `predict` uses it on the user's image and the explorer's
draw page runs a line-by-line port of it in JavaScript (tests compare the two on the same ink).
So it is written with nothing a browser lacks: area-average resampling as two small matrices,
and a whole-pixel shift. NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

from mnist_cnn.errors import UserError

FIELD = 28  # the side of an MNIST image
BOX = 20    # the side of the square the ink's bounding box is scaled into


def round_half_up(x: float) -> int:
    """floor(x + 0.5): the rounding JavaScript's Math.round does (NumPy rounds halves to even)."""
    return int(math.floor(x + 0.5))


def area_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix of area-average resampling along one axis.

    Output pixel i covers the input interval [i s, (i + 1) s) with s = size_in / size_out; its
    value is the mean of the input over that interval, each input pixel weighted by how much of
    it lies inside. Rows sum to 1.
    """
    step = size_in / size_out
    weights = np.zeros((size_out, size_in))
    for i in range(size_out):
        lo, hi = i * step, (i + 1) * step
        for j in range(int(math.floor(lo)), min(int(math.ceil(hi)), size_in)):
            weights[i, j] = (min(hi, j + 1) - max(lo, j)) / step
    return weights


def to_mnist_field(ink, threshold: float = 0.0) -> np.ndarray:
    """Crop, scale and centre a drawing the way MNIST's digits were made.

    Parameters
    ----------
    ink : array_like, shape (H, W)
        Ink intensity in [0, 1] (1: full ink, 0: paper), any size.
    threshold : float
        Pixels with ink above it define the bounding box (0: any ink at all).

    Returns
    -------
    np.ndarray, shape (28, 28), float32 in [0, 1]
        The bounding box scaled so its longer side is 20 px (aspect kept; area averaging, so
        strokes are anti-aliased), shifted by whole pixels so its centre of mass lands on the
        centre of the field (index 13.5, 13.5).

    Raises
    ------
    UserError
        If there is no ink above `threshold`.
    """
    ink = np.clip(np.asarray(ink, dtype=np.float64), 0.0, 1.0)
    if ink.ndim != 2:
        raise UserError(f"expected a 2-D ink image, got shape {ink.shape}")
    rows = np.flatnonzero((ink > threshold).any(axis=1))
    cols = np.flatnonzero((ink > threshold).any(axis=0))
    if rows.size == 0:
        raise UserError("the image is blank: nothing is drawn on it")
    box = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = box.shape
    scale = BOX / max(height, width)
    new_h = max(1, min(BOX, round_half_up(height * scale)))
    new_w = max(1, min(BOX, round_half_up(width * scale)))
    small = area_weights(height, new_h) @ box @ area_weights(width, new_w).T  # (new_h, new_w)

    field = np.zeros((FIELD, FIELD))
    top, left = (FIELD - new_h) // 2, (FIELD - new_w) // 2
    field[top:top + new_h, left:left + new_w] = small
    mass = field.sum()
    centre_y = (field.sum(axis=1) @ np.arange(FIELD)) / mass
    centre_x = (field.sum(axis=0) @ np.arange(FIELD)) / mass
    middle = (FIELD - 1) / 2
    return shift(field, round_half_up(middle - centre_y),
                 round_half_up(middle - centre_x)).astype(np.float32)


def shift(image: np.ndarray, down: int, right: int) -> np.ndarray:
    """`image` moved by whole pixels, zeros shifted in, what leaves the field dropped."""
    out = np.zeros_like(image)
    h, w = image.shape
    src_y, dst_y = slice(max(0, -down), min(h, h - down)), slice(max(0, down), min(h, h + down))
    src_x, dst_x = slice(max(0, -right), min(w, w - right)), slice(max(0, right), min(w, w + right))
    out[dst_y, dst_x] = image[src_y, src_x]
    return out
