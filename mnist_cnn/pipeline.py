"""Input pipelines: in-memory arrays as tf.data mini-batches, for training, validation and
prediction. Every Keras `fit`, `evaluate` and `predict` of the project is fed from here.

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

import keras
import numpy as np
import tensorflow as tf

from mnist_cnn.config import AUGMENTATION
from mnist_cnn.datasets import get_dataset


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


def augmenter(seed: int, dataset: str = "mnist") -> keras.Sequential:
    """The data set's augmentation (`config.AUGMENTATION`) as Keras preprocessing layers:
    "translate" small random shifts (±2 px), "rotate" rotations (±10°), "flip" horizontal flips.

    MNIST: translate + rotate (the layers and seeds every MNIST model was trained with).
    """
    make = {
        "translate": lambda s: keras.layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant",
                                                              seed=s),
        "rotate": lambda s: keras.layers.RandomRotation(10 / 360, fill_mode="constant", seed=s),
        "flip": lambda s: keras.layers.RandomFlip("horizontal", seed=s),
    }
    return keras.Sequential([make[kind](seed + i) for i, kind in
                             enumerate(AUGMENTATION[get_dataset(dataset).name])], name="augment")


def training_dataset(x, y, config) -> tf.data.Dataset:
    """The training batches of a `TrainConfig`: shuffled (seeded by `config.seed`), augmented
    when `config.augment` and the data set has an augmentation, without autotuning."""
    ds = _gathered(x, y, config.batch_size, shuffle_seed=config.seed)
    if config.augment and AUGMENTATION[get_dataset(config.dataset).name]:
        aug = augmenter(config.seed, config.dataset)
        ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=1)
    return without_autotune(ds.prefetch(2))
