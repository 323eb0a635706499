"""OIP parameterisations and start images: how free parameters become an image in [0, 1].

`image_of` / `params_of` convert between parameters and images for the three
parameterisations: "clip" (the pixels themselves, projected onto [0, 1] after each step),
"sigmoid" (logits of the pixels) and "fourier" (a 1/f-scaled real spectrum behind a sigmoid,
Lucid's `fft_image`). `start_images` draws the random start of each map from `(seed, map)`, so
a map's OIP does not depend on which other maps share its batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mnist_cnn.errors import UserError

START_WAVELENGTHS = (28, 14, 7, 4)  # px; the series seeded its OIPs on 4 length scales


def _spectrum_scale(size=28):
    """1/f amplitude scale of a real 2-D FFT of a size x size image (Lucid's `fft_image`)."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freq = np.sqrt(fx ** 2 + fy ** 2)
    return (1.0 / np.maximum(freq, 1.0 / size)).astype(np.float32)


_SCALE = tf.constant(_spectrum_scale()[None, :, :])


def _logit(x):
    x = np.clip(x, 1e-3, 1 - 1e-3)
    return np.log(x / (1 - x))


def image_of(params, param: str):
    """Images (N, 28, 28) in [0, 1] from parameters (tensor)."""
    if param == "clip":
        return params
    if param == "sigmoid":
        return tf.sigmoid(params)
    spectrum = tf.complex(params[..., 0], params[..., 1]) * tf.cast(_SCALE, tf.complex64)
    return tf.sigmoid(tf.signal.irfft2d(spectrum, fft_length=[28, 28]))


def params_of(images: np.ndarray, param: str) -> np.ndarray:
    """Inverse of `image_of`: parameters (float32) that give `images` (N, 28, 28)."""
    images = np.asarray(images, np.float32)
    if param == "clip":
        return np.clip(images, 0, 1)
    if param == "sigmoid":
        return _logit(images).astype(np.float32)
    if param == "fourier":
        spectrum = np.fft.rfft2(_logit(images)) / _spectrum_scale()
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)
    raise UserError(f"unknown parameterisation {param!r}; choose clip, sigmoid or fourier")


# ---------------------------------------------------------------------------------------------
# Start images, from seeds so that batched and single runs agree.

def _upsample_matrix(nodes: int, size: int = 28) -> np.ndarray:
    """Linear interpolation from `nodes` grid points to `size` pixels (size x nodes)."""
    pos = np.linspace(0, nodes - 1, size)
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(nodes)[None, :]))


def start_images(maps, seed: int, mean: float = 0.2, std: float = 0.1,
                 wavelengths=START_WAVELENGTHS) -> np.ndarray:
    """Random fluctuations on several length scales, one image per map, in [0, 1].

    Parameters
    ----------
    maps : sequence of int
        The image for map m is drawn from the generator seeded with (seed, m).
    seed : int
    mean, std : float
        Mean and standard deviation of the result before clipping.
    wavelengths : sequence of int
        Length scales in pixels: for each, Gaussian noise on a grid with that spacing / 2,
        interpolated linearly to 28x28; the scales get equal weight.

    Returns
    -------
    float32 array (N, 28, 28)
    """
    out = np.empty((len(maps), 28, 28), np.float32)
    for i, m in enumerate(maps):
        rng = np.random.default_rng([int(seed), int(m)])
        noise = np.zeros((28, 28))
        for wavelength in wavelengths:
            up = _upsample_matrix(max(round(2 * 28 / wavelength), 1) + 1)
            grid = rng.standard_normal((up.shape[1], up.shape[1]))
            noise += up @ grid @ up.T
        noise = (noise - noise.mean()) / (noise.std() + 1e-8)
        out[i] = np.clip(mean + std * noise, 0.0, 1.0)
    return out
