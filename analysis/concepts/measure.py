"""Measurements of each image that a person can name (issue #26): Morpho-MNIST's stroke
measurements (Castro et al. 2019) and the topology of the ink.

Per image, from the ink (pixels above half the maximum intensity):

* area: ink pixels;
* length: skeleton pixels (scikit-image's `skeletonize`);
* thickness: the stroke's width, 2 x the mean distance from the skeleton to the nearest
  background pixel (Morpho-MNIST's definition) less 0.5: the skeleton of an odd-width line sits
  on its centre (distance (w + 1) / 2), of an even one half a pixel off it (w / 2), so a straight
  line w pixels wide measures w + 0.5 (odd) or w - 0.5 (even): within half a pixel;
* slant: the shear angle in degrees from the ink's second moments (positive: leaning right);
* width, height: the ink's bounding box, in pixels;
* loops: holes in the ink (background components, 4-connected, not touching the border, of at
  least `MIN_HOLE` pixels);
* endpoints: skeleton pixels with one skeleton neighbour (8-connected);
* junctions: groups of skeleton pixels with three or more neighbours.

Everything but the skeleton and its distance transform runs on whole stacks with SciPy
(labels and convolutions whose structure never connects two images).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from scipy import ndimage

NAMES = ("area", "length", "thickness", "slant", "width", "height", "loops", "endpoints",
         "junctions")
# What is a stroke on clothes? Only the shape's extent and the ink's mass mean the same thing.
FASHION_NAMES = ("area", "width", "height", "thickness")
COUNTS = ("loops", "endpoints", "junctions")
MIN_HOLE = 2     # one-pixel holes are binarisation noise, not loops a reader sees
CHUNK = 5000     # images per stack operation (memory: ~40 bytes per pixel in the transforms)
VERSION = 1      # bump when a definition changes: old cache files are then not read

_PLANE4 = np.zeros((3, 3, 3), bool)
_PLANE4[1] = ndimage.generate_binary_structure(2, 1)
_PLANE8 = np.zeros((3, 3, 3), bool)
_PLANE8[1] = True


def names_for(dataset: str = "mnist") -> tuple:
    """The measurements that make sense for a data set: all of NAMES for digits, FASHION_NAMES
    for Fashion-MNIST (strokes, loops and slant of a shirt mean nothing)."""
    return NAMES if dataset == "mnist" else FASHION_NAMES


def binarize(x: np.ndarray) -> np.ndarray:
    """(N, H, W) or (N, H, W, 1) images, uint8 or float -> bool ink (above half the maximum)."""
    x = np.asarray(x)
    if x.ndim == 4:
        x = x[..., 0]
    top = 255 if x.dtype == np.uint8 else 1.0
    return x > top / 2


def _skeleton_distance(ink: np.ndarray, skel: np.ndarray) -> np.ndarray:
    """Sum over each skeleton of the distance to the nearest background pixel (a 2-D transform
    per image: a 3-D one on the stack also runs along the image axis and is ten times slower)."""
    total = np.zeros(len(ink))
    for i in np.flatnonzero(skel.any(axis=(1, 2))):
        padded = np.pad(ink[i], 1)  # ink touching the border still has background beyond it
        total[i] = ndimage.distance_transform_edt(padded)[1:-1, 1:-1][skel[i]].sum()
    return total


def _skeletons(ink: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize

    out = np.zeros_like(ink)
    for i in np.flatnonzero(ink.any(axis=(1, 2))):
        out[i] = skeletonize(ink[i])
    return out


def _label_images(lab: np.ndarray, count: int) -> np.ndarray:
    """Image index of each label 1..count: ndimage.label numbers in raster order, so the labels
    of image i are those above the largest label of the images before it."""
    top = np.maximum.accumulate(lab.reshape(len(lab), -1).max(axis=1))
    return np.searchsorted(top, np.arange(1, count + 1), side="left")


def _loops(ink: np.ndarray) -> np.ndarray:
    n = len(ink)
    lab, count = ndimage.label(~ink, structure=_PLANE4)
    if count == 0:
        return np.zeros(n, int)
    border = np.zeros(count + 1, bool)
    for edge in (lab[:, 0], lab[:, -1], lab[:, :, 0], lab[:, :, -1]):
        border[edge.ravel()] = True
    sizes = np.bincount(lab.ravel(), minlength=count + 1)[1:]
    hole = ~border[1:] & (sizes >= MIN_HOLE)
    return np.bincount(_label_images(lab, count)[hole], minlength=n)


def _per_image_count(mask: np.ndarray) -> np.ndarray:
    lab, count = ndimage.label(mask, structure=_PLANE8)
    if count == 0:
        return np.zeros(len(mask), int)
    return np.bincount(_label_images(lab, count), minlength=len(mask))


def _extent(ink: np.ndarray, axis: int) -> np.ndarray:
    any_ = ink.any(axis=axis)                       # (N, side)
    side = any_.shape[1]
    first = np.argmax(any_, axis=1)
    last = side - 1 - np.argmax(any_[:, ::-1], axis=1)
    return np.where(any_.any(axis=1), last - first + 1, 0)


def _slant(ink: np.ndarray) -> np.ndarray:
    w = ink.astype(np.float32)
    mass = np.maximum(w.sum(axis=(1, 2)), 1)
    rows = np.arange(ink.shape[1])[None, :, None]
    cols = np.arange(ink.shape[2])[None, None, :]
    r0 = (w * rows).sum(axis=(1, 2)) / mass
    c0 = (w * cols).sum(axis=(1, 2)) / mass
    dr = rows - r0[:, None, None]
    dc = cols - c0[:, None, None]
    var_r = (w * dr * dr).sum(axis=(1, 2))
    cov = (w * dr * dc).sum(axis=(1, 2))
    # Up is -row: a right lean means columns grow as rows shrink; shear = cov(col, up) / var(up).
    shear = np.where(var_r > 0, -cov / np.maximum(var_r, 1e-12), 0.0)
    return np.degrees(np.arctan(shear))


def _measure_chunk(ink: np.ndarray, names) -> dict:
    out = {}
    if "area" in names:
        out["area"] = ink.sum(axis=(1, 2))
    if "width" in names:
        out["width"] = _extent(ink, 1)
    if "height" in names:
        out["height"] = _extent(ink, 2)
    if "slant" in names:
        out["slant"] = _slant(ink)
    if "loops" in names:
        out["loops"] = _loops(ink)
    need_skel = {"length", "thickness", "endpoints", "junctions"} & set(names)
    if need_skel:
        skel = _skeletons(ink)
        n_skel = skel.sum(axis=(1, 2))
        if "length" in names:
            out["length"] = n_skel
        if "thickness" in names:
            total = _skeleton_distance(ink, skel)
            out["thickness"] = np.where(n_skel > 0,
                                        2 * (total / np.maximum(n_skel, 1) - 0.25), 0.0)
        if {"endpoints", "junctions"} & set(names):
            kernel = _PLANE8.astype(np.int16)
            kernel[1, 1, 1] = 0
            neighbours = ndimage.convolve(skel.astype(np.int16), kernel, mode="constant")
            if "endpoints" in names:
                out["endpoints"] = ((neighbours == 1) & skel).sum(axis=(1, 2))
            if "junctions" in names:
                out["junctions"] = _per_image_count((neighbours >= 3) & skel)
    return out


def measure(x: np.ndarray, names=NAMES) -> dict:
    """Measure every image of a stack (see the module docstring for each definition).

    Parameters
    ----------
    x : array (N, H, W) or (N, H, W, 1), uint8 (0-255) or float (0-1)
    names : measurements to compute, a subset of NAMES

    Returns
    -------
    dict name -> float32 array (N,), in the order of `names`.
    """
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown measurement {unknown[0]!r}; known: {', '.join(NAMES)}")
    ink = binarize(x)
    parts = [_measure_chunk(ink[i:i + CHUNK], names) for i in range(0, len(ink), CHUNK)]
    return {n: np.concatenate([p[n] for p in parts]).astype(np.float32) if parts
            else np.zeros(0, np.float32) for n in names}


def digest(x: np.ndarray) -> str:
    """sha256 of an image stack's shape, dtype and bytes: the cache key of its measurements."""
    h = hashlib.sha256(f"{x.shape}{x.dtype}v{VERSION}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """Where measurements are cached: $MNIST_CNN_CACHE, else $XDG_CACHE_HOME/mnist_cnn, else
    ~/.cache/mnist_cnn."""
    if os.environ.get("MNIST_CNN_CACHE"):
        return Path(os.environ["MNIST_CNN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist_cnn"


def measure_cached(x: np.ndarray, names=NAMES, folder=None) -> tuple:
    """`measure(x, names)`, read from the cache when this exact stack was measured before.

    Parameters
    ----------
    x : image stack; names : as in `measure`; folder : cache folder (default `cache_dir()`)

    Returns
    -------
    (measurements dict, cached: bool). A cache that cannot be written is skipped silently: the
    measurements are the same, only the next run is slower.
    """
    from mnist_cnn.fileio import save_npz

    path = Path(folder or cache_dir()) / f"concepts-{digest(x)[:24]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if all(n in z.files for n in names):
                    return {n: z[n] for n in names}, True
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    values = measure(x, NAMES if set(names) <= set(NAMES) and len(x) else names)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_npz(path, **values)
    except OSError:
        pass
    return {n: values[n] for n in names}, False
