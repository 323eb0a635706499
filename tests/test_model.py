"""The architecture: layer names, shapes, parameter counts; safe loading; the cuts through it."""

import keras
import numpy as np
import pytest

from mnist_cnn.series import LAYER_NAMES, OUTPUT_SHAPES, PARAM_COUNT
from mnist_cnn.errors import UserError
from mnist_cnn.model import build_model, head_model, load_trained, pre_activation_model, sub_model


def test_layers_shapes_and_parameters():
    model = build_model(l2=1e-4)
    assert [layer.name for layer in model.layers[1:]] == list(LAYER_NAMES)
    for name, shape in OUTPUT_SHAPES.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape
    params = {name: model.get_layer(name).count_params()
              for name in ("conv_1", "conv_2", "conv_3", "dense_1", "output")}
    assert params == {"conv_1": 320, "conv_2": 18_496, "conv_3": 73_856, "dense_1": 80_710,
                      "output": 710}
    assert model.count_params() == PARAM_COUNT == 174_092
    assert len(model.losses) == 5  # one L2 term per kernel


def test_mixed_precision_model_loads_as_float32(tmp_path):
    model = build_model(dtype_policy="mixed_bfloat16")
    assert model.get_layer("conv_1").compute_dtype == "bfloat16"
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_trained(path)
    assert loaded.get_layer("conv_1").compute_dtype == "float32"
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-2)


def test_bad_model_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no model at"):
        load_trained(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="cannot load model"):
        load_trained(junk)
    inputs = keras.Input((28, 28, 3))  # colour input: not an accepted model (mnist_cnn.network)
    other = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    other.save(tmp_path / "other.keras")
    with pytest.raises(UserError, match=r"takes inputs of shape \(28, 28, 3\)"):
        load_trained(tmp_path / "other.keras")


@pytest.fixture(scope="module")
def images(mnist):
    from mnist_cnn.data import to_input

    return to_input(mnist[1][0][:64])


@pytest.mark.parametrize("layer", ["conv_1", "pool_2", "conv_3", "dense_1", "output"])
def test_cut_model_is_the_pre_activation(tiny_model, images, layer):
    import tensorflow as tf

    x = images
    pre = np.asarray(pre_activation_model(tiny_model, layer)(x))
    if layer == "output":  # the logits: softmax of them is the model's output
        np.testing.assert_allclose(tf.nn.softmax(pre).numpy(), tiny_model(x), atol=1e-5)
    else:
        np.testing.assert_allclose(np.maximum(pre, 0), sub_model(tiny_model, [layer])([x]),
                                   atol=1e-5)
        assert (pre < 0).any()  # the cut really ends before the ReLU


def test_head_finishes_the_forward_pass(tiny_model, images):
    cut = sub_model(tiny_model, ["conv_3", "output"])
    conv_3, output = (np.asarray(t) for t in cut([images]))
    head = head_model(tiny_model, "conv_3")
    np.testing.assert_allclose(np.asarray(head(conv_3)), output, atol=1e-5)
