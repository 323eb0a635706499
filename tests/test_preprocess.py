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


# Image files -> ink -> field (mnist_cnn.images): polarity, alpha, colour, noise, sizes.

def _seven(size=(160, 120)):
    from PIL import Image, ImageDraw

    image = Image.new("L", size, 235)  # light grey paper
    ImageDraw.Draw(image).line([(20, 20), (110, 20), (60, 105)], fill=25, width=10)
    return image


def test_inverted_input_gives_the_same_field(tmp_path):
    from PIL import ImageOps

    from mnist_cnn.images import load_ink, to_field

    _seven().save(tmp_path / "dark.png")
    ImageOps.invert(_seven()).save(tmp_path / "light.bmp")
    dark, light = load_ink(tmp_path / "dark.png"), load_ink(tmp_path / "light.bmp")
    assert dark.polarity == "dark ink on light paper" and light.polarity == "light ink on dark paper"
    np.testing.assert_allclose(to_field(dark), to_field(light), atol=1e-6)
    field = to_field(dark)
    assert max(_box(field)) == 20 and field.max() == pytest.approx(1.0, abs=0.05)
    cy, cx = _centre_of_mass(field)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_colour_alpha_and_jpeg_noise_give_the_drawing(tmp_path):
    from PIL import Image

    from mnist_cnn.images import load_ink, to_field

    reference = to_field(load_ink(_save(_seven(), tmp_path / "grey.png")))
    # colour: blue ink on cream paper, as a photo of a note
    rgb = Image.merge("RGB", [_seven().point(lambda v: v), _seven().point(lambda v: v),
                              _seven().point(lambda v: min(255, v + 20))])
    colour = load_ink(_save(rgb, tmp_path / "colour.webp", lossless=True))
    assert colour.polarity == "dark ink on light paper"
    np.testing.assert_allclose(to_field(colour), reference, atol=0.08)
    # a canvas export: white strokes on a transparent background (over white they would vanish)
    alpha = Image.new("LA", (160, 120), (255, 0))
    alpha.putalpha(_seven().point(lambda v: 255 - v if v < 128 else 0))
    drawn = load_ink(_save(alpha, tmp_path / "alpha.png"))
    assert drawn.polarity == "opaque ink (alpha)"
    assert _box(to_field(drawn)) == _box(reference)
    # JPEG ringing and specks below the noise threshold do not move the bounding box
    noisy = np.asarray(_seven(), np.float64)
    noisy += np.random.default_rng(0).normal(0, 6, noisy.shape)
    jpeg = load_ink(_save(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)),
                          tmp_path / "noisy.jpg", quality=70))
    assert _box(to_field(jpeg)) == _box(reference)


def _save(image, path, **options):
    image.save(path, **options)
    return path


def test_a_tiny_image_and_a_wide_one_keep_their_aspect(tmp_path):
    from PIL import Image

    from mnist_cnn.images import load_ink, to_field

    small = np.full((7, 5), 255, np.uint8)
    small[1:6, 2] = 0  # a 5-pixel "1"
    field = to_field(load_ink(_save(Image.fromarray(small), tmp_path / "one.gif")))
    assert _box(field) == (20, 4)  # 5 x 1 ink -> 20 x 4
    wide = np.full((30, 300), 255, np.uint8)
    wide[10:20, 20:280] = 0  # 10 x 260 dash
    assert _box(to_field(load_ink(_save(Image.fromarray(wide), tmp_path / "dash.png")))) == (1, 20)


def test_a_photo_stored_sideways_is_turned_upright(tmp_path):
    from PIL import Image

    from mnist_cnn.images import load_ink, to_field

    upright = _seven()
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    sideways.save(tmp_path / "photo.jpg", exif=exif, quality=95)
    upright.save(tmp_path / "upright.jpg", quality=95)
    np.testing.assert_allclose(to_field(load_ink(tmp_path / "photo.jpg")),
                               to_field(load_ink(tmp_path / "upright.jpg")), atol=0.1)
