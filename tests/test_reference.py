"""The NumPy reference equals Keras (forward) and tf.GradientTape (backward); receptive fields
match what perturbing one input pixel of the real model changes; `info` prints them."""

import numpy as np
import pytest
import scipy.signal

from mnist_cnn import numpy_reference as ref

TOL = dict(rtol=1e-5, atol=1e-5)

# (image shape N,H,W,C; kernel; filters; stride; padding): odd/even sizes, strides that do and
# do not divide the input, non-square images.
CONV_CASES = [
    ((2, 7, 7, 1), 3, 4, 1, "valid"),
    ((2, 8, 9, 3), 3, 5, 2, "valid"),
    ((1, 9, 8, 2), 4, 3, 3, "valid"),
    ((2, 7, 7, 3), 3, 2, 1, "same"),
    ((2, 8, 7, 2), 4, 3, 2, "same"),
    ((1, 10, 11, 1), 5, 2, 3, "same"),
]
POOL_CASES = [((2, 8, 8, 3), 2, None, "valid"), ((2, 9, 7, 2), 3, 2, "valid"),
              ((1, 7, 9, 2), 2, 1, "valid"), ((2, 7, 7, 2), 2, None, "same"),
              ((1, 9, 8, 3), 3, 2, "same")]


def keras_grads(layer, x, dy):
    """Forward output and gradients of sum(layer(x) * dy) w.r.t. x and the layer's weights."""
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        loss = tf.reduce_sum(y * dy)
    grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    return y.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("shape,k,filters,stride,padding", CONV_CASES)
def test_conv2d_matches_keras_forward_and_gradients(shape, k, filters, stride, padding):
    import keras

    rng = np.random.default_rng(sum(shape) + k + stride)
    x = rng.normal(size=shape)
    w = rng.normal(size=(k, k, shape[-1], filters))
    b = rng.normal(size=filters)
    layer = keras.layers.Conv2D(filters, k, strides=stride, padding=padding, dtype="float64")
    layer.build(shape)
    layer.set_weights([w, b])
    y = ref.conv2d_forward(x, w, b, stride, padding)
    dy = rng.normal(size=y.shape)
    y_keras, (dx_keras, dw_keras, db_keras) = keras_grads(layer, x, dy)
    np.testing.assert_allclose(y, y_keras, **TOL)
    dx, dw, db = ref.conv2d_backward(x, w, dy, stride, padding)
    np.testing.assert_allclose(dx, dx_keras, **TOL)
    np.testing.assert_allclose(dw, dw_keras, **TOL)
    np.testing.assert_allclose(db, db_keras, **TOL)


@pytest.mark.parametrize("stride", [1, 2])
def test_full_padding_is_valid_on_zero_padded_input(stride):
    import keras

    rng = np.random.default_rng(stride)
    x, w = rng.normal(size=(2, 6, 7, 2)), rng.normal(size=(3, 3, 2, 4))
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    layer = keras.layers.Conv2D(4, 3, strides=stride, use_bias=False, dtype="float64")
    layer.build(padded.shape)
    layer.set_weights([w])
    y = ref.conv2d_forward(x, w, stride=stride, padding="full")
    dy = rng.normal(size=y.shape)
    y_keras, (dx_keras, dw_keras) = keras_grads(layer, padded, dy)
    np.testing.assert_allclose(y, y_keras, **TOL)
    dx, dw, _ = ref.conv2d_backward(x, w, dy, stride, "full")
    np.testing.assert_allclose(dx, dx_keras[:, 2:-2, 2:-2], **TOL)
    np.testing.assert_allclose(dw, dw_keras, **TOL)


def test_full_correlation_matches_scipy():
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(9, 8)), rng.normal(size=(4, 3))
    y = ref.conv2d_forward(image[None, :, :, None], kernel[:, :, None, None], padding="full")
    np.testing.assert_allclose(y[0, :, :, 0], scipy.signal.correlate2d(image, kernel, "full"), **TOL)


@pytest.mark.parametrize("padding", ["valid", "same", "full"])
def test_flipping_the_kernel_turns_correlation_into_convolution(padding):
    rng = np.random.default_rng(1)
    image, kernel = rng.normal(size=(8, 8)), rng.normal(size=(3, 3))
    x, w = image[None, :, :, None], kernel[:, :, None, None]
    true_conv = scipy.signal.convolve2d(image, kernel, "full" if padding == "full" else "valid")
    if padding == "same":  # odd kernel, stride 1: 'same' keeps the centre of the full result
        true_conv = scipy.signal.convolve2d(image, kernel, "same")
    np.testing.assert_allclose(ref.convolve2d(x, w, padding=padding)[0, :, :, 0], true_conv, **TOL)
    np.testing.assert_allclose(ref.conv2d_forward(x, w[::-1, ::-1], padding=padding)[0, :, :, 0],
                               true_conv, **TOL)
    # An asymmetric kernel: correlation and convolution really differ.
    assert not np.allclose(ref.conv2d_forward(x, w, padding=padding), ref.convolve2d(x, w, padding=padding))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape,pool,stride,padding", POOL_CASES)
def test_pooling_matches_keras_forward_and_gradients(kind, shape, pool, stride, padding):
    import keras

    rng = np.random.default_rng(sum(shape) + pool)
    x = rng.normal(size=shape)  # continuous values: no ties inside a window
    cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    layer = cls(pool, strides=stride, padding=padding, dtype="float64")
    forward = ref.max_pool_forward if kind == "max" else ref.avg_pool_forward
    backward = ref.max_pool_backward if kind == "max" else ref.avg_pool_backward
    y = forward(x, pool, stride, padding)
    dy = rng.normal(size=y.shape)
    y_keras, (dx_keras,) = keras_grads(layer, x, dy)
    np.testing.assert_allclose(y, y_keras, **TOL)
    np.testing.assert_allclose(backward(x, dy, pool, stride, padding), dx_keras, **TOL)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_global_pooling_matches_keras(kind):
    import keras

    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 6, 4))
    layer = (keras.layers.GlobalMaxPooling2D if kind == "max" else keras.layers.GlobalAveragePooling2D)(dtype="float64")
    forward = ref.global_max_pool if kind == "max" else ref.global_avg_pool
    backward = ref.global_max_pool_backward if kind == "max" else ref.global_avg_pool_backward
    y = forward(x)
    dy = rng.normal(size=y.shape)
    y_keras, (dx_keras,) = keras_grads(layer, x, dy)
    np.testing.assert_allclose(y, y_keras, **TOL)
    np.testing.assert_allclose(backward(x, dy), dx_keras, **TOL)


def test_bad_padding_is_rejected():
    with pytest.raises(ValueError, match="padding"):
        ref.conv2d_forward(np.zeros((1, 5, 5, 1)), np.zeros((3, 3, 1, 1)), padding="circular")


def test_receptive_field_recursion_on_the_architecture():
    from mnist_cnn.model import build_model

    fields = ref.receptive_fields(ref.layer_geometry(build_model()))
    assert fields == {"conv_1": (3, 1), "pool_1": (4, 2), "conv_2": (8, 2), "pool_2": (10, 4),
                      "conv_3": (18, 4)}


def _perturbation_changes(model, pixels, base, delta=5.0):
    """Per map layer and pixel: which output positions change when that pixel is raised."""
    from mnist_cnn.series import MAP_LAYERS
    from mnist_cnn.model import sub_model

    batch = np.repeat(base, len(pixels) + 1, axis=0)
    for i, (p, q) in enumerate(pixels, start=1):
        batch[i, p, q, 0] += delta
    outputs = sub_model(model, list(MAP_LAYERS)).predict(batch, verbose=0)
    return {name: [np.abs(out[i] - out[0]).max(axis=-1) > 1e-6 for i in range(1, len(batch))]
            for name, out in zip(MAP_LAYERS, outputs)}


def _receptive_boxes(model, pixels):
    """Per map layer and pixel: which output positions have the pixel inside their field."""
    boxes = {}
    for name, (field, stride) in ref.receptive_fields(ref.layer_geometry(model)).items():
        size = model.get_layer(name).output.shape[1]
        start = np.arange(size) * stride
        boxes[name] = [np.outer((start <= p) & (p < start + field), (start <= q) & (q < start + field))
                       for p, q in pixels]
    return boxes


PIXELS = [(0, 0), (13, 13), (27, 27), (9, 20)]


def test_one_pixel_changes_only_units_whose_field_contains_it(tiny_model):
    """On the trained model: a unit that changes has the pixel in its field (a unit whose field
    holds the pixel may still not change: a ReLU can stay at 0, a max can stay elsewhere)."""
    base = np.random.default_rng(0).uniform(0, 1, size=(1, 28, 28, 1)).astype("float32")
    changes = _perturbation_changes(tiny_model, PIXELS, base)
    boxes = _receptive_boxes(tiny_model, PIXELS)
    for name in changes:
        for pixel, changed, inside in zip(PIXELS, changes[name], boxes[name]):
            assert not (changed & ~inside).any(), f"{name} pixel {pixel}: change outside the field"
        assert any(changed.any() for changed in changes[name]), f"{name}: nothing changed at all"


def test_receptive_fields_are_exact_on_a_positive_network():
    """With positive weights, zero biases and a positive input every value is positive, so no ReLU
    clips and raising a pixel raises every unit that sees it; raised far enough (weights scaled
    by 1/fan-in keep the other values near 0.5) it also wins every max-pooling window it enters.
    So here changed <=> inside the field, exactly."""
    from mnist_cnn.model import build_model

    model = build_model()
    rng = np.random.default_rng(1)
    model.set_weights([(rng.uniform(0.5, 1.0, w.shape) / np.prod(w.shape[:-1])).astype("float32")
                       if w.ndim > 1 else np.zeros_like(w) for w in model.get_weights()])
    base = rng.uniform(0.1, 1, size=(1, 28, 28, 1)).astype("float32")
    changes = _perturbation_changes(model, PIXELS, base, delta=1e4)
    boxes = _receptive_boxes(model, PIXELS)
    for name in changes:
        for pixel, changed, inside in zip(PIXELS, changes[name], boxes[name]):
            np.testing.assert_array_equal(changed, inside, err_msg=f"{name} pixel {pixel}")


def test_info_prints_every_layer(capsys):
    assert ref.print_info() == 0
    text = capsys.readouterr().out
    for name, field in [("conv_1", "3x3"), ("pool_1", "4x4"), ("conv_2", "8x8"), ("pool_2", "10x10"),
                        ("conv_3", "18x18"), ("dense_1", "28x28")]:
        line = next(l for l in text.splitlines() if l.startswith(name))
        assert field in line
    assert "174,092 parameters" in text
