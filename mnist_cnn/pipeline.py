"""Input pipelines: in-memory arrays as tf.data mini-batches, for training (shuffled and
augmented: `training_dataset`, `augment`), validation and prediction (`batches`). Every Keras
`fit`, `evaluate` and `predict` of the project is fed from here.

Why not hand Keras the NumPy arrays: Keras turns them into a tf.data pipeline with autotuning
on, and in TensorFlow 2.21 deleting an autotuned iterator waits for the autotuner's thread to
finish its current sleep, which doubles after every round up to 60 s; the cancellation does not
wake it. Keras makes a new iterator for every epoch, every validation and every `predict`, so
each of them ended with a wait of up to its own length, the machine idle. On a 2-core AMD EPYC
that made 20 s training epochs take 37-44 s at random (the default training 309-338 s instead
of ~220 s). Measured by `python -m mnist_cnn bench --only pipeline`: an autotuned iterator
deleted after 5 s of use. Our pipelines have nothing to tune (in-memory arrays, fixed
prefetch), so they switch autotuning off and the wait is gone.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from mnist_cnn.config import AUGMENTATION
from mnist_cnn.data.registry import get_dataset


def without_autotune(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data's autotuning off (no autotuner thread to wait for, see module doc)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def batches(x, y=None, batch_size: int = 1000, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Mini-batches of in-memory arrays, in order or shuffled, without autotuning.

    Parameters
    ----------
    x : array (N, ...)
    y : array (N, ...), optional
        Targets; without them the batches are `x` alone (for `predict`).
    batch_size : int
    shuffle_seed : int, optional
        None keeps the order. An int shuffles, seeded, and reshuffles at every epoch.

    Returns
    -------
    tf.data.Dataset of x batches, or of (x, y) batches.
    """
    return without_autotune(_gathered(x, y, batch_size, shuffle_seed).prefetch(2))


def _gathered(x, y, batch_size, shuffle_seed):
    # The shuffle permutes indices and each batch is gathered from the arrays: shuffling the
    # images themselves refilled a 50,000-image buffer at every epoch start, which stalled each
    # epoch by 15-19 s on a 2-core AMD EPYC.
    arrays = [tf.constant(np.asarray(x))] + ([] if y is None else [tf.constant(np.asarray(y))])
    ds = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    if y is None:
        return ds.batch(batch_size).map(lambda i: tf.gather(arrays[0], i))
    return ds.batch(batch_size).map(lambda i: (tf.gather(arrays[0], i), tf.gather(arrays[1], i)))


# What `random_affine` can compose; `config.AUGMENTATION` picks from these per data set.
AUGMENTATION_KINDS = ("translate", "rotate", "flip")


def random_affine(n, seed, kinds, size: int = 28):
    """`n` random image transforms of the augmentation `kinds`, composed into one affine map each.

    "translate" shifts by up to ±2 px in x and y, "rotate" turns by up to ±10° about the centre,
    "flip" mirrors left-right with probability 1/2 (each uniform, independent per image).

    Parameters
    ----------
    n : int or scalar tensor
    seed : int tensor of shape (2,)
        Stateless seed: the same seed, the same transforms.
    kinds : sequence of str
    size : int
        Image height and width.

    Returns
    -------
    float32 tensor (n, 8): rows [a0, a1, a2, b0, b1, b2, 0, 0] mapping each output pixel (x, y)
    to the input point (a0 x + a1 y + a2, b0 x + b1 y + b2), as `ops.image.affine_transform`
    takes them.
    """
    unknown = set(kinds) - set(AUGMENTATION_KINDS)
    if unknown:
        raise ValueError(f"unknown augmentation {sorted(unknown)}; known: {', '.join(AUGMENTATION_KINDS)}")
    draws = tf.random.stateless_uniform([n, 4], seed, -1.0, 1.0)
    angle = draws[:, 0] * (10 * math.pi / 180) if "rotate" in kinds else tf.zeros([n])
    shift = draws[:, 1:3] * 2.0 if "translate" in kinds else tf.zeros([n, 2])
    mirror = tf.sign(draws[:, 3]) if "flip" in kinds else tf.ones([n])
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1, b0, b1 = mirror * cos, -mirror * sin, sin, cos
    centre = (size - 1) / 2  # rotate about the middle of the image, as Keras' RandomRotation
    a2 = centre - (a0 + a1) * centre - shift[:, 0]
    b2 = centre - (b0 + b1) * centre - shift[:, 1]
    zero = tf.zeros([n])
    return tf.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


def augment(images, seed, kinds):
    """`images` (N, H, W, C) moved by `random_affine`: one bilinear resample, zeros outside."""
    transforms = random_affine(tf.shape(images)[0], seed, kinds, size=images.shape[1])
    return keras.ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                            fill_mode="constant", fill_value=0)


def training_dataset(x, y, config) -> tf.data.Dataset:
    """The training batches of a `TrainConfig`: shuffled (seeded by `config.seed`), augmented
    when `config.augment` and the data set has an augmentation (`config.AUGMENTATION`), without
    autotuning.

    The augmentation is one affine resample per image (`augment`), not one Keras layer per kind:
    half the work (1.1 instead of 2.2 s per epoch on a 2-core AMD EPYC), and one interpolation
    blurs the digit less than two. Its random draws are stateless, keyed by a seeded stream that
    is drawn afresh every epoch: the same seed, the same images, on every run.
    """
    ds = _gathered(x, y, config.batch_size, shuffle_seed=config.seed)
    kinds = AUGMENTATION[get_dataset(config.dataset).name]
    if config.augment and kinds:
        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, seed: (augment(batch[0], seed, kinds), batch[1]))
    return without_autotune(ds.prefetch(2))
