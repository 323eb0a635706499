"""Raster pictures every page writer and analysis shares: grey images, strips, tiles and grids
of NumPy arrays, attribution overlays, and PNG writing (Pillow). Drawing 1,500 small figures
with Matplotlib would take minutes; this takes seconds.

Grey images use the project's scale: ink (1) black, paper (0) white. PNGs are written at the
images' own resolution (28 px) and enlarged by the browser. Attribution maps use a diverging
scale: red pushes the target up, blue down, white nothing, each map scaled by its own largest
|value|.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

GAP = 1  # px between the images of a strip (at native resolution)


def gray(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] -> uint8 with ink dark: 255 * (1 - v)."""
    return np.round(255 * (1 - np.clip(images, 0, 1))).astype(np.uint8)


def strip(images, gap: int = GAP) -> np.ndarray:
    """A row of images (each (H, W) in [0, 1], top-aligned) as one grey uint8 array at native
    resolution, white between them. Pages enlarge it with `image-rendering: pixelated`, which
    keeps the files tiny and fast to write; boxes are drawn over it by the page."""
    return tile_row([gray(np.asarray(img)) for img in images], gap)


def tile_row(tiles, gap: int = GAP) -> np.ndarray:
    """uint8 tiles, grey (H, W) or colour (H, W, 3), top-aligned in a row, white between them."""
    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    out = np.full((height, width, *tiles[0].shape[2:]), 255, np.uint8)
    x = 0
    for t in tiles:
        out[:t.shape[0], x:x + t.shape[1]] = t
        x += t.shape[1] + gap
    return out


def grid(images, cols: int, gap: int = 2) -> np.ndarray:
    """Images (N, H, W) in [0, 1] in rows of `cols`, as one grey uint8 array (white gaps)."""
    images = np.asarray(images)
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = gray(images[i])
    return out


def crops(images, boxes) -> list:
    """The part of each image inside its half-open box ((r0, r1), (c0, c1))."""
    return [np.asarray(img)[r0:r1, c0:c1] for img, ((r0, r1), (c0, c1)) in zip(images, boxes)]


def save_png(array: np.ndarray, path) -> tuple:
    """Write a uint8 grey (H, W) or RGB (H, W, 3) array as PNG; returns its (width, height)."""
    Image.fromarray(array).save(path, compress_level=6)
    return array.shape[1], array.shape[0]


# ---------------------------------------------------------------------------------------------
# Inline SVG charts. Every mark carries a <title> with its numbers (shown on hover).


def diverging(values: np.ndarray) -> np.ndarray:
    """(H, W) signed values -> (H, W, 3) uint8: red positive, blue negative, white zero."""
    v = np.asarray(values, np.float64)
    top = np.abs(v).max()
    v = v / top if top > 0 else v
    pos, neg = np.clip(v, 0, 1), np.clip(-v, 0, 1)
    rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], axis=-1)
    return np.round(255 * np.clip(rgb, 0, 1)).astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The diverging map over the image's ink (drawn in grey): (H, W, 3) uint8."""
    colour = diverging(values).astype(np.float64)
    ink = np.clip(np.asarray(image, np.float64), 0, 1)[..., None]
    return np.round(colour * (1 - 0.35 * ink)).astype(np.uint8)


def feature_grid(maps: np.ndarray) -> np.ndarray:
    """A layer's maps (H, W, C) as a grey grid, all maps on one scale (the layer's maximum), so
    strong and weak maps can be told apart; ink dark."""
    maps = np.moveaxis(np.asarray(maps, np.float64), -1, 0)
    top = maps.max()
    cols = int(np.ceil(np.sqrt(len(maps) * 2)))
    return grid(maps / top if top > 0 else maps, cols=cols, gap=1)
