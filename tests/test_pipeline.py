"""Input pipelines: batches in order or shuffled, the augmentation, autotuning off everywhere."""

import numpy as np
import pytest
import tensorflow as tf

from mnist_cnn.config import TrainConfig
from mnist_cnn.data import to_input
from mnist_cnn.pipeline import augment, batches, random_affine, training_dataset


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
    moved = np.asarray(augment(tf.constant(x), tf.constant([0, 0], tf.int64), ("translate", "rotate")))
    assert moved.shape == x.shape
    assert moved.min() >= -1e-6 and moved.max() <= 1 + 1e-6
    changed = np.abs(moved - x).reshape(64, -1).max(axis=1) > 0.1
    assert changed.mean() > 0.9  # nearly every image is shifted or rotated
    # ink is moved, not made: the total stays within the bilinear resample's blur and the border
    assert np.allclose(moved.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=0.1)


def _transform(row, image):
    """`image` (H, W) under one row of `random_affine` by hand: nearest input pixel, zeros outside."""
    a0, a1, a2, b0, b1, b2 = row[:6]
    out = np.zeros_like(image)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            xi, yi = round(a0 * x + a1 * y + a2), round(b0 * x + b1 * y + b2)
            if 0 <= xi < image.shape[1] and 0 <= yi < image.shape[0]:
                out[y, x] = image[yi, xi]
    return out


def test_random_affine_stays_in_range_and_composes_the_kinds():
    seed = tf.constant([1, 2], tf.int64)
    rows = random_affine(500, seed, ("translate", "rotate")).numpy()
    angle = np.degrees(np.arctan2(rows[:, 3], rows[:, 0]))
    assert np.abs(angle).max() <= 10 + 1e-4 and np.abs(angle).max() > 9  # ±10°, uniform
    np.testing.assert_allclose(rows[:, 0] ** 2 + rows[:, 3] ** 2, 1, rtol=1e-5)  # no scaling
    # the centre pixel moves by the shift alone: at most 2 px in x and y
    centre = 13.5
    moved = rows[:, [2, 5]] + centre * (rows[:, [0, 3]] + rows[:, [1, 4]]) - centre
    assert np.abs(moved).max() <= 2 + 1e-4 and np.abs(moved).max() > 1.8
    only_shift = random_affine(50, seed, ("translate",)).numpy()
    np.testing.assert_array_equal(only_shift[:, [0, 1, 3, 4]], [[1, 0, 0, 1]] * 50)
    flips = random_affine(200, seed, ("flip",)).numpy()
    assert set(np.round(flips[:, 0], 6)) == {-1.0, 1.0}
    mirrored = flips[flips[:, 0] < 0][0]
    image = np.arange(28 * 28, dtype="float32").reshape(28, 28)
    np.testing.assert_array_equal(_transform(mirrored, image), image[:, ::-1])  # left-right
    np.testing.assert_array_equal(random_affine(5, seed, ()).numpy()[:, :6],
                                  [[1, 0, 0, 0, 1, 0]] * 5)  # nothing asked: the identity
    with pytest.raises(ValueError, match="unknown augmentation"):
        random_affine(5, seed, ("zoom",))


def test_augment_applies_the_map_it_draws():
    """`augment` resamples each image bilinearly under the row `random_affine` drew for it: close
    to the same map sampled at the nearest pixels by hand, far from another seed's map."""
    image = np.random.default_rng(0).random((1, 28, 28, 1), dtype="float32")
    image = np.kron(image[:, ::4, ::4], np.ones((1, 4, 4, 1), "float32"))  # smooth enough to sample
    seed, other = tf.constant([0, 0], tf.int64), tf.constant([7, 7], tf.int64)
    kinds = ("translate", "rotate")
    moved = augment(tf.constant(image), seed, kinds).numpy()[0, :, :, 0]
    own = _transform(random_affine(1, seed, kinds).numpy()[0], image[0, :, :, 0])
    unrelated = _transform(random_affine(1, other, kinds).numpy()[0], image[0, :, :, 0])
    assert np.abs(moved - own).mean() < 0.5 * np.abs(moved - unrelated).mean()


def test_training_batches_are_augmented_afresh_each_epoch_and_seeded(mnist):
    x, y = to_input(mnist[0][0][:256]), mnist[0][1][:256]
    config = TrainConfig(batch_size=64, augment=True, seed=5)
    ds = training_dataset(x, y, config)
    first, second = (next(iter(ds))[0].numpy() for _ in range(2))
    again = next(iter(training_dataset(x, y, config)))[0].numpy()
    np.testing.assert_array_equal(first, again)  # same seed, same first batch
    assert not np.array_equal(first, second)  # a new shuffle and new transforms every epoch
    plain = TrainConfig(batch_size=64, augment=False, seed=5)
    xs, ys = (t.numpy() for t in next(iter(training_dataset(x, y, plain))))
    rows = [np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0] for image in xs]
    np.testing.assert_array_equal(y[rows], ys)  # unaugmented: the images themselves, labelled


def test_every_data_set_asks_for_known_kinds():
    from mnist_cnn.config import AUGMENTATION
    from mnist_cnn.pipeline import AUGMENTATION_KINDS

    for dataset, kinds in AUGMENTATION.items():
        assert set(kinds) <= set(AUGMENTATION_KINDS), dataset
