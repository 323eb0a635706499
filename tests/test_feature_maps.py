"""Feature maps: shapes, agreement with the full model, batching, unknown layers."""

import numpy as np
import pytest

from mnist_cnn.series import LAYER_NAMES, OUTPUT_SHAPES


@pytest.fixture(scope="module")
def images(mnist):
    from mnist_cnn.data import to_input

    (_, _), (x_test, _) = mnist
    return to_input(x_test[:64])


def test_shapes_of_every_layer(tiny_model, images):
    from analysis.feature_maps import FEATURE_LAYERS, extract

    maps = extract(tiny_model, images[:5], FEATURE_LAYERS)
    assert list(maps) == list(FEATURE_LAYERS)
    for name, value in maps.items():
        assert value.shape == (5, *OUTPUT_SHAPES[name]) and value.dtype == np.float32


def test_sub_model_equals_layers_inside_the_full_model(tiny_model, images):
    """Run the full model layer by layer by hand; the extractor must give the same tensors."""
    from analysis.feature_maps import FeatureExtractor

    maps = FeatureExtractor(tiny_model, LAYER_NAMES, batch_size=25)(images)  # 3 batches
    x = images
    for name in LAYER_NAMES:
        x = np.asarray(tiny_model.get_layer(name)(x))
        np.testing.assert_allclose(maps[name], x, rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(maps["output"], np.asarray(tiny_model(images)), atol=1e-5)
    assert (maps["conv_3"] > 0).any() and (maps["conv_3"] == 0).any()  # real ReLU maps


def test_batch_size_does_not_change_the_result(tiny_model, images):
    from analysis.feature_maps import FeatureExtractor

    small = FeatureExtractor(tiny_model, ["conv_2", "dense_1"], batch_size=7)(images)
    large = FeatureExtractor(tiny_model, ["conv_2", "dense_1"], batch_size=1000)(images)
    for name in small:
        np.testing.assert_allclose(small[name], large[name], rtol=1e-5, atol=1e-5)


def test_unknown_layer_is_a_user_error(tiny_model):
    from analysis.feature_maps import FeatureExtractor
    from mnist_cnn.errors import UserError

    with pytest.raises(UserError, match="unknown layer 'conv_9'"):
        FeatureExtractor(tiny_model, ["conv_1", "conv_9"])
