"""Input pipelines: batches in order or shuffled, the augmentation, autotuning off everywhere."""

import numpy as np
import pytest

from mnist_cnn.config import TrainConfig
from mnist_cnn.data import to_input
from mnist_cnn.pipeline import augmenter, batches, training_dataset


def _concat(ds):
    parts = list(ds.as_numpy_iterator())
    return parts, (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def test_batches_keep_order_and_pair_images_with_targets():
    x, y = np.arange(10 * 4, dtype="float32").reshape(10, 2, 2), np.arange(10)
    parts, (xs, ys) = _concat(batches(x, y, batch_size=4))
    assert [len(p[1]) for p in parts] == [4, 4, 2]
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)
    alone = np.concatenate(list(batches(x, batch_size=3).as_numpy_iterator()))  # for predict
    np.testing.assert_array_equal(alone, x)


def test_shuffled_batches_are_seeded_permutations_reshuffled_each_epoch():
    x, y = np.arange(100, dtype="float32")[:, None], np.arange(100)
    ds = batches(x, y, batch_size=16, shuffle_seed=3)
    _, (x1, y1) = _concat(ds)
    _, (x2, _) = _concat(ds)
    _, (x3, _) = _concat(batches(x, y, batch_size=16, shuffle_seed=3))
    np.testing.assert_array_equal(x1[:, 0], y1)  # pairs stay together
    assert sorted(y1) == list(range(100)) and not np.array_equal(y1, np.arange(100))
    assert not np.array_equal(x1, x2)  # a new order every epoch
    np.testing.assert_array_equal(x1, x3)  # the same seed, the same first epoch


@pytest.mark.parametrize("augment", [False, True])
def test_autotuning_is_off_in_every_pipeline(augment):
    """Deleting an autotuned iterator can wait for the autotuner's sleep (up to the length of
    the epoch, `bench --only pipeline`): none of our pipelines may have it on."""
    x, y = np.zeros((8, 28, 28, 1), "float32"), np.zeros(8, "int64")
    config = TrainConfig(batch_size=4, augment=augment)
    for ds in (batches(x, y), batches(x), batches(x, y, shuffle_seed=0),
               training_dataset(x, y, config)):
        assert ds.options().autotune.enabled is False


def test_augmentation_moves_pixels_but_keeps_shape_and_range(mnist):
    x = to_input(mnist[0][0][:64])
    moved = np.asarray(augmenter(seed=0)(x, training=True))
    assert moved.shape == x.shape
    assert moved.min() >= -1e-6 and moved.max() <= 1 + 1e-6
    changed = np.abs(moved - x).reshape(64, -1).max(axis=1) > 0.1
    assert changed.mean() > 0.9  # nearly every image is shifted or rotated
