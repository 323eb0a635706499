"""Attribution (analysis.attribution): on a model whose answer is known every method finds it;
integrated gradients is complete; the faithfulness measurements tell a model-free map from one
that explains the model."""

import keras
import numpy as np
import pytest

from analysis.attribution import faithfulness
from analysis.attribution.verdicts import measure
from analysis.attribution.methods import Attributor, target_weights

PIXEL, CLASS = (9, 17), 3


def one_pixel_model(conv=True):
    """The class-3 logit is relu(x[9, 17] - 0.5) (through a 1x1 conv when `conv`), every other
    logit 0: the answer depends on that pixel alone, and only when it is brighter than 0.5."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(1, 1, activation="relu", name="threshold")(inputs) if conv else inputs
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(10, activation="softmax", name="reader")(x)
    model = keras.Model(inputs, out)
    if conv:
        model.get_layer("threshold").set_weights([np.ones((1, 1, 1, 1), np.float32),
                                                  np.full(1, -0.5, np.float32)])
    kernel = np.zeros((784, 10), np.float32)
    kernel[PIXEL[0] * 28 + PIXEL[1], CLASS] = 1.0
    model.get_layer("reader").set_weights([kernel, np.zeros(10, np.float32)])
    return model


def stroke_image():
    """A dim stroke (0.4, below the threshold: no effect) and the one bright pixel."""
    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, 5:23, 8:11] = 0.4
    x[0, 20:23, 8:22] = 0.4
    x[0, PIXEL[0], PIXEL[1]] = 1.0
    return x


def test_every_method_puts_its_mass_on_the_pixel_the_model_reads():
    a = Attributor(one_pixel_model(), smooth_samples=8, smooth_noise=0.05)
    x = stroke_image()
    maps, check = a.all_maps(x, target_weights([CLASS]))
    assert set(maps) == {"saliency", "gradient_x_input", "smoothgrad", "integrated_gradients",
                         "occlusion", "gradcam:threshold"}
    near = np.zeros((28, 28), bool)  # occlusion moves a 4x4 patch: its mass is on p's patch
    near[8:12, 16:20] = True
    for name, m in maps.items():
        mass = np.abs(m[0])
        where = near if name == "occlusion" else (np.arange(784) == PIXEL[0] * 28 + PIXEL[1]).reshape(28, 28)
        assert mass[where].sum() >= 0.99 * mass.sum() > 0, name
    # completeness: f(x) - f(0) = relu(1 - 0.5) - 0, all of it on the pixel
    assert check["delta"][0] == pytest.approx(0.5, abs=1e-6)
    assert check["sum"][0] == pytest.approx(0.5, rel=0.01)


def test_a_sequential_model_without_conv_layers_works_and_contrasts_are_differences():
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.1, (784, 10)).astype(np.float32), np.zeros(10, np.float32)])
    a = Attributor(model)
    x = rng.random((3, 28, 28, 1)).astype(np.float32)
    maps, _ = a.all_maps(x, target_weights([1, 2, 3], [4, 4, 4]), ["gradient_x_input"])
    kernel = model.get_weights()[0]
    expected = x[..., 0] * (kernel[:, [1, 2, 3]] - kernel[:, [4]]).T.reshape(3, 28, 28)
    np.testing.assert_allclose(maps["gradient_x_input"], expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(Exception, match="differ"):
        target_weights([4], [4])


def test_deletion_finds_the_pixel_first_and_the_random_order_does_not():
    a = Attributor(one_pixel_model())
    x = np.repeat(stroke_image(), 4, axis=0)
    w = target_weights([CLASS] * 4)
    maps, _ = a.all_maps(x, w, ["integrated_gradients"])
    result = faithfulness.deletion_insertion(a, x, w, maps, steps=8)
    c = result["curves"]["integrated_gradients"]
    full = faithfulness.probability(a, x, w)
    np.testing.assert_allclose(c["deletion"][:, 0], full, rtol=1e-5)  # nothing removed yet
    np.testing.assert_allclose(c["insertion"][:, -1], full, rtol=1e-5)  # everything revealed
    assert (c["deletion"][:, 1] < full).all()  # the pixel goes in the first slice
    row = result["summary"]["integrated_gradients"]
    assert row["beats_random_deletion"] == 1.0 and row["beats_random"]


def test_integrated_gradients_is_complete_on_a_trained_model(tiny_model, mnist):
    (_, _), (x_test, y_test) = mnist
    x = (x_test[:20] / 255.0).astype(np.float32)[..., None]
    a = Attributor(tiny_model)
    _, check = a.integrated_gradients(x, target_weights(y_test[:20]), return_check=True)
    assert (check["relative_error"] <= 0.01).all(), check["relative_error"].max()


def test_randomisation_separates_the_trained_model_from_a_random_one(tiny_model, mnist):
    (_, _), (x_test, y_test) = mnist
    x = (x_test[:6] / 255.0).astype(np.float32)[..., None]
    w = target_weights(y_test[:6])
    a = Attributor(tiny_model)
    before = [v.numpy().copy() for v in a.net.weights]
    maps, _ = a.all_maps(x, w, ["saliency", "integrated_gradients"])
    result = measure(a, x, w, steps=8, randomise=6, maps=maps)
    rand = result["randomisation"]
    assert rand["layers"][0] == "output_pre" and rand["layers"][-1] == "conv_1"  # top down
    # the gradient of a random network ranks the ink's pixels differently ...
    assert rand["correlation"]["saliency"][-1] < faithfulness.RANDOMISATION_PASS
    assert rand["passes"]["saliency"]
    # ... the edge map, which never looks at the model, does not change: the check fails it
    assert rand["correlation"]["sobel"] == pytest.approx([1.0] * len(rand["layers"]))
    assert not rand["passes"]["sobel"]
    for v, old in zip(a.net.weights, before):  # the trained weights are back
        np.testing.assert_array_equal(v.numpy(), old)
    # the trained maps of the gradient methods beat the random order on these digits
    rows = {r["method"]: r for r in result["rows"]}
    assert rows["integrated_gradients"]["beats_random_deletion"] >= 5 / 6
    assert result["completeness"]["within_1_percent"] == 1.0


def test_spearman_is_rank_correlation_and_zero_for_a_constant_map():
    a = np.arange(10.0)[None]
    assert faithfulness.spearman(a, a ** 3)[0] == pytest.approx(1.0)
    assert faithfulness.spearman(a, -a)[0] == pytest.approx(-1.0)
    assert faithfulness.spearman(a, np.zeros_like(a))[0] == 0.0
    mask = np.arange(10)[None] < 5
    assert faithfulness.spearman(a, np.where(mask, a, -a), mask)[0] == pytest.approx(1.0)


def test_a_conv_units_attribution_lies_in_the_receptive_field_of_its_peak(tmp_path):
    from analysis.attribution.units import unit_attributions
    from analysis.explore.build import write_attribution_strips

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="c")(inputs)
    out = keras.layers.Dense(10, activation="softmax", name="d")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, out)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 1, w.shape).astype(np.float32) for w in model.get_weights()])
    images = np.zeros((2, 28, 28, 1), np.float32)
    images[0, 5:9, 20:24] = 1.0  # each image has one blob: the peak is on it
    images[1, 18:22, 3:7] = 1.0
    units = [{"name": "c-1", "layer": "c", "index": 1, "dead": False,
              "top": [{"index": 0}, {"index": 1}]},
             {"name": "d-3", "layer": "d", "index": 3, "dead": False, "top": [{"index": 1}]}]
    maps = unit_attributions(model, units, images)
    assert set(maps) == {"c-1", "d-3"} and maps["c-1"].shape == (2, 28, 28)
    for m in maps["c-1"]:
        rows, cols = np.nonzero(m)
        assert m.any() and rows.max() - rows.min() <= 2 and cols.max() - cols.min() <= 2  # 3x3
    (tmp_path / "img").mkdir()
    write_attribution_strips(tmp_path, maps, images, units)
    from PIL import Image

    assert Image.open(tmp_path / "img" / "c-1-attribution.png").size == (2 * 29 - 1, 28)


def test_the_public_verbs_attribute_and_predict(tiny_model, tiny_model_path, mnist, tmp_path,
                                                monkeypatch):
    """`analysis.attribute` and `analysis.predict_images` (docs/api.md) on plain values (the
    nearest neighbours among 2,000 training images, as in tests/test_predict.py: the 60,000
    cost seconds of forward passes)."""
    import analysis
    from mnist_cnn import data
    from mnist_cnn.data import to_input
    from mnist_cnn.images import load_ink
    from PIL import Image

    load = data.load_dataset

    def small(*args, **kwargs):
        (x, y), test = load(*args, **kwargs)
        return (x[:2000], y[:2000]), test

    monkeypatch.setattr(data, "load_dataset", small)
    _, (x_test, y_test) = mnist
    result = analysis.attribute(tiny_model, to_input(x_test[:4]), y_test[:4], randomise=1)
    assert {r["method"] for r in result["rows"]} >= {"saliency", "integrated_gradients", "occlusion"}
    assert all(m.shape == (4, 28, 28) for m in result["maps"].values())
    png = tmp_path / "seven.png"
    Image.fromarray(255 - x_test[0]).save(png)  # ink dark on white, as a user draws it
    [answer] = analysis.predict_images(tiny_model, tiny_model_path, [(str(png), load_ink(png))],
                                       tmp_path / "out", oip_steps=2)
    assert answer["answer"][0][0] == int(tiny_model.predict(to_input(x_test[:1]), verbose=0).argmax())
    assert (tmp_path / "out" / "seven" / "index.html").is_file()
