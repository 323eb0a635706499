"""The draw page's export (analysis/explore/draw.py) without a browser: what the page reads
is the model's own layer list and weights, and what it cannot compute is refused.
(The page itself is tested in headless Chromium by test_draw_browser.py.)"""

import base64
import json

import numpy as np
import pytest

from mnist_cnn.errors import UserError


def small_model(activation="relu"):
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(4, 3, activation=activation, name="c")(inputs)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.MaxPooling2D(2, name="p")(h)
    h = layers.Flatten(name="f")(h)
    return keras.Model(inputs, layers.Dense(10, activation="softmax", name="out")(h))


def test_export_is_the_models_layer_list_and_weights(tmp_path):
    from analysis.explore.draw import write_draw

    model = small_model()
    x = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    files = write_draw(tmp_path, model, x, np.arange(30) % 10, unit_pages={"c"})
    assert {f.name for f in files} >= {"draw.html", "draw.js", "draw-net.js", "draw-model.js",
                                       "draw-samples.js", "draw.css", "site.css"}
    exported = json.loads((tmp_path / "draw-model.js").read_text().split("=", 1)[1].strip().rstrip(";"))
    layers = {L["name"]: L for L in exported["layers"]}
    assert list(layers) == ["c", "bn", "p", "f", "out"]
    assert layers["c"]["shape"] == [26, 26, 4] and layers["p"]["kernel"] == [2, 2]
    assert [L["source"] for L in exported["layers"]] == ["c", "c", "c", None, "out"]
    assert [L["page"] for L in exported["layers"]] == [True, True, True, False, False]
    kernel = np.frombuffer(base64.b64decode(layers["c"]["w"]), "<f4")
    np.testing.assert_array_equal(kernel, model.get_layer("c").get_weights()[0].ravel())
    gamma, beta, mean, var = model.get_layer("bn").get_weights()
    scale = np.frombuffer(base64.b64decode(layers["bn"]["scale"]), "<f4")
    np.testing.assert_allclose(scale, gamma / np.sqrt(var + 1e-3), rtol=1e-6)
    samples = json.loads((tmp_path / "draw-samples.js").read_text().split("=", 1)[1].strip().rstrip(";"))
    assert samples["count"] == 30 and samples["labels"][:3] == [0, 1, 2]
    assert np.array_equal(np.frombuffer(base64.b64decode(samples["pixels"]), np.uint8).reshape(x.shape), x)
    page = (tmp_path / "draw.html").read_text()
    assert "http" not in page + "".join((tmp_path / n).read_text() for n in ("draw.js", "draw-net.js"))


def test_an_activation_the_page_cannot_compute_is_refused(tmp_path):
    from analysis.explore.draw import export_model

    with pytest.raises(UserError, match="layer 'c' has activation 'sparsemax'; the draw page computes"):
        export_model(small_model("sparsemax"))
