"""MNIST-style preprocessing (mnist_cnn.preprocess): the 20x20 box, the aspect, the centre of mass."""

import numpy as np
import pytest

from mnist_cnn.errors import UserError
from mnist_cnn.preprocess import area_weights, to_mnist_field


def _centre_of_mass(field):
    ys, xs = np.mgrid[:field.shape[0], :field.shape[1]]
    return (ys * field).sum() / field.sum(), (xs * field).sum() / field.sum()


def _box(field):
    rows, cols = np.flatnonzero(field.any(axis=1)), np.flatnonzero(field.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_area_weights_average_and_keep_mass():
    w = area_weights(7, 3)
    assert np.allclose(w.sum(axis=1), 1)
    assert np.allclose(w.sum(axis=0) * 7 / 3, 1)  # every input pixel is used exactly once
    assert np.allclose(area_weights(4, 2) @ np.array([1.0, 3.0, 5.0, 7.0]), [2.0, 6.0])


def test_an_off_centre_bar_lands_centred_with_its_aspect_kept():
    canvas = np.zeros((200, 300))
    canvas[10:110, 250:275] = 1.0  # 100 x 25, top right
    field = to_mnist_field(canvas)
    assert field.shape == (28, 28) and field.dtype == np.float32
    assert _box(field) == (20, 5)  # longer side 20, aspect 4:1 kept
    cy, cx = _centre_of_mass(field)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    assert 0 <= field.min() and field.max() <= 1


def test_downscaling_anti_aliases_and_keeps_the_ink_fraction():
    ys, xs = np.mgrid[:280, :280]
    radius = np.hypot(ys - 140, xs - 140)
    canvas = ((radius > 80) & (radius < 100)).astype(float)  # a ring, 199 px across
    field = to_mnist_field(canvas)
    assert 0 < field[field > 0].min() < 0.5 and field.max() > 0.9  # grey edges, solid middle
    height, width = _box(canvas)
    assert field.sum() == pytest.approx(canvas.sum() * (20 / height) * (20 / width), rel=1e-5)


def test_mnist_digits_are_already_in_this_form(mnist):
    (_, _), (x_test, _) = mnist
    for image in x_test[:50] / 255.0:
        field = to_mnist_field(image)
        assert max(_box(field)) == 20
        cy, cx = _centre_of_mass(field)
        assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_blank_input_is_refused():
    with pytest.raises(UserError, match="blank"):
        to_mnist_field(np.zeros((50, 50)))
