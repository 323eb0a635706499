"""mnist_cnn.network: the description read from the model, checked against the model itself."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from mnist_cnn import series  # noqa: E402
from mnist_cnn.errors import UserError  # noqa: E402
from mnist_cnn.network import describe  # noqa: E402


def odd_model(seed=0):
    """5x5 'same' convs, batch norm, average pooling, a stride-2 conv, dropout, global pool."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(4, 5, padding="same", activation="relu", name="c1"),
        layers.BatchNormalization(name="bn"),
        layers.AveragePooling2D(2, name="avg"),
        layers.Conv2D(6, 3, strides=2, padding="same", activation="tanh", name="c2"),
        layers.MaxPooling2D(2, padding="same", name="mp"),
        layers.Conv2D(5, 3, name="c3"),
        layers.Dropout(0.3, name="drop"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(10, name="logits"),
    ], name="odd")


def test_the_series_network_matches_its_table():
    from mnist_cnn.model import build_model, head_model, pre_activation_model
    from mnist_cnn.numpy_reference import layer_geometry, receptive_fields

    model = build_model()
    head_model(model)  # cuts call the layers again; the description follows the model's graph
    pre_activation_model(model, "pool_2")
    net = describe(model)
    assert net.names == series.LAYER_NAMES
    assert {i.name: i.output_shape for i in net.layers} == series.OUTPUT_SHAPES
    assert tuple(i.name for i in net.map_layers) == series.MAP_LAYERS
    assert tuple(i.name for i in net.conv_layers) == series.CONV_LAYERS
    assert [u.name for u in net.units] == ["conv_1", "conv_2", "conv_3", "dense_1", "output"]
    assert net.num_classes == 10 and net.parameters == series.PARAM_COUNT
    assert net.input_shape == (28, 28, 1) and net.last_conv.name == "conv_3"
    assert [i.name for i in net.hidden_dense] == ["dense_1"]
    assert {n: net.activation_of(n).name for n in series.TARGET_LAYERS} == series.ACTIVATION_OF
    fields = receptive_fields(layer_geometry(model))
    assert {i.name: (i.receptive_field, i.jump) for i in net.map_layers} == fields
    assert net.layer("conv_3").box(2, 2) == ((8, 26), (8, 26))
    assert net.below("conv_2").name == "conv_1" and net.below("dense_1").name == "conv_3"
    assert net.above("conv_3").name == "dense_1" and net.above("output") is None


def test_receptive_fields_agree_with_single_pixel_perturbation():
    """Every input pixel that changes a unit lies in its box, and for a unit in a corner and one
    in the middle of each map layer the changing pixels fill the box exactly."""
    model = odd_model()
    net = describe(model)
    assert [i.kind for i in net.layers] == ["conv", "batch_norm", "avg_pool", "conv", "max_pool",
                                            "conv", "dropout", "global_avg_pool", "dense"]
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, (1, 28, 28, 1)).astype("float32")
    eye = np.eye(784, dtype="float32").reshape(784, 28, 28, 1)
    cut = keras.Model(model.inputs, [model.get_layer(i.name).output for i in net.map_layers])
    plain = cut.predict(base, verbose=0)
    for sign in (3.0, -3.0):
        moved = cut.predict(base + sign * eye, verbose=0, batch_size=784)
        for info, p, m in zip(net.map_layers, plain, moved):
            changed = np.abs(m - p).max(axis=-1) > 1e-6  # (784, H, W)
            h, w = info.output_shape[:2]
            for row, col in {(0, 0), (h // 2, w // 2), (h - 1, w - 1)}:
                (top, bottom), (left, right) = info.box(row, col)
                seen = changed[:, row, col].reshape(28, 28)
                inside = np.zeros((28, 28), bool)
                inside[top:bottom, left:right] = True
                assert not (seen & ~inside).any(), (info.name, row, col)
                if sign > 0:
                    rows, cols = np.nonzero(seen)
                    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == \
                        (top, bottom, left, right), (info.name, row, col)


def test_the_odd_model_geometry():
    net = describe(odd_model())
    c2 = net.layer("c2")  # 14x14 in, stride 2 'same' 3x3: 7x7, TensorFlow pads 0 before, 1 after
    assert c2.output_shape == (7, 7, 6) and c2.jump == 4 and c2.receptive_field == 5 + 1 + 2 * 2
    assert net.activation_of("mp").name == "c2"  # tanh is monotone: pool of pre-activations
    assert net.activation_of("avg").name == "avg" and net.activation_of("bn").name == "bn"
    assert net.num_classes == 10 and net.output_layer.activation == "linear"
    assert [u.name for u in net.units] == ["c1", "c2", "c3", "logits"]
    assert net.layer("gap").receptive_field is None and net.rows()[-1]["receptive_field"] == 28


def _branching():
    x = keras.Input((28, 28, 1))
    a = layers.Conv2D(2, 3, padding="same", name="left")(x)
    b = layers.Conv2D(2, 3, padding="same", name="right")(x)
    y = layers.Flatten()(layers.Add(name="join")([a, b]))
    return keras.Model(x, layers.Dense(10, activation="softmax")(y))


@pytest.mark.parametrize("make, words", [
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Lambda(lambda t: t * 2, name="lam"),
                               layers.Flatten(), layers.Dense(10)]), "'lam' is a Lambda"),
    (_branching, "'join' (Add) merges 2 branches"),
    (lambda: keras.Sequential([keras.Input((32, 32, 3)), layers.Flatten(), layers.Dense(10)]),
     "(32, 32, 3)"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(5, name="o")]),
     "'o' has 5 units, but the data set has 10 classes"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Dense(10)]), "Dense on maps"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                               layers.Dense(10, activation="relu", name="o")]), "softmax or linear"),
    (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(2, (3, 5), name="r"),
                               layers.Flatten(), layers.Dense(10)]), "square kernels"),
    (lambda: keras.Sequential([layers.Flatten(), layers.Dense(10)]), "no input shape"),
])
def test_refusals_are_one_line_naming_the_layer(make, words):
    with pytest.raises(UserError) as e:
        describe(make(), num_classes=10)
    message = str(e.value)
    assert words in message and "\n" not in message


def test_importing_network_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, mnist_cnn.network; "
            "sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_model_is_described_once_and_again_after_its_layers_change():
    """describe() keeps its answer beside the model (issue 24: it was recomputed per call); the
    class-count check still runs on every call."""
    import keras

    from mnist_cnn.errors import UserError
    from mnist_cnn.network import describe

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    first = describe(model)
    assert describe(model) is first and describe(model, num_classes=10) is first
    with pytest.raises(UserError, match="has 10 units, but the data set has 3 classes"):
        describe(model, num_classes=3)
    model.pop()
    model.add(keras.layers.Dense(7, name="seven"))
    again = describe(model)
    assert again is not first and again.layers[-1].name == "seven"
