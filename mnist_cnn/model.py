"""The series' CNN, Conv(32)-Pool-Conv(64)-Pool-Conv(128)-MLP, and every model the analyses read.

Building the series' network (`build_model`, named as in `mnist_cnn.config`'s layer table:
conv_1 pool_1 conv_2 pool_2 conv_3 flatten dense_1 output), loading a trained model (any chain
`mnist_cnn.network.describe` accepts), moving its weights between precisions, and every cut the
analyses make through a model (`sub_model` for feature maps, `pre_activation_model` for OIPs,
`head_model` for the ablation), so no analysis rebuilds layers. The cuts find their layers in
`describe(model)`, never in a table. Inputs are 28x28x1 images in [0, 1].
"""

from __future__ import annotations

import keras
from keras import layers

from mnist_cnn.series import INPUT_SHAPE, LAYER_NAMES, MODEL_NAMES, OUTPUT_SHAPES
from mnist_cnn.data.registry import get_dataset
from mnist_cnn.errors import UserError


def build_model(l2: float = 0.0, dtype_policy: str = "float32", dataset: str = "mnist") -> keras.Model:
    """Build the (untrained) network.

    Parameters
    ----------
    l2 : float
        L2 penalty on every kernel (0 disables it).
    dtype_policy : str
        Keras dtype policy for the hidden layers, e.g. "mixed_bfloat16"; the softmax output
        is always computed in float32.
    dataset : str
        The data set it is (to be) trained on; recorded as the model's name
        (`series.MODEL_NAMES`: "mnist_cnn", "mnist_cnn_fashion"), which the .keras file keeps.

    Returns
    -------
    keras.Model
        Functional model from `image` (28, 28, 1) to class probabilities (10,).
    """
    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    conv = dict(kernel_size=3, activation="relu", kernel_regularizer=reg, dtype=dtype_policy)
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = layers.Conv2D(32, name="conv_1", **conv)(inputs)
    x = layers.MaxPooling2D(2, name="pool_1", dtype=dtype_policy)(x)
    x = layers.Conv2D(64, name="conv_2", **conv)(x)
    x = layers.MaxPooling2D(2, name="pool_2", dtype=dtype_policy)(x)
    x = layers.Conv2D(128, name="conv_3", **conv)(x)
    x = layers.Flatten(name="flatten", dtype=dtype_policy)(x)
    x = layers.Dense(70, activation="relu", kernel_regularizer=reg, name="dense_1",
                     dtype=dtype_policy)(x)
    outputs = layers.Dense(10, activation="softmax", kernel_regularizer=reg, name="output",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAMES[get_dataset(dataset).name])


def model_dataset(model, path=None):
    """The data set a model was trained on: from its name (`series.MODEL_NAMES`), else from the
    metrics.json beside `path` (config.dataset), else None (a model of unknown origin)."""
    import json
    from pathlib import Path

    for name, model_name in MODEL_NAMES.items():
        if model.name == model_name:
            return name
    metrics = Path(path).parent / "metrics.json" if path else None
    if metrics and metrics.is_file():
        try:
            return get_dataset(json.loads(metrics.read_text())["config"]["dataset"]).name
        except (ValueError, KeyError, TypeError, UserError):
            return None
    return None


def check_dataset(model, dataset, source="model", path=None) -> None:
    """Raise UserError (one line naming both data sets) if `model` was trained on another data set."""
    wanted = get_dataset(dataset)
    trained = model_dataset(model, path)
    if trained is not None and trained != wanted.name:
        other = get_dataset(trained)
        raise UserError(f"{source} was trained on {other.title}, not {wanted.title}; pass "
                        f"--dataset {other.name} (DATASET={other.name}), or a {wanted.title} model "
                        f"with --model (`make train DATASET={wanted.name}` writes one)")


def with_weights(weights, dtype_policy: str = "float32", dataset: str = "mnist") -> keras.Model:
    """The architecture built under `dtype_policy`, holding `weights` (a list in Keras order).

    Weights are stored in float32 whatever policy trained them, so this is how a model moves
    between mixed_bfloat16 (fast training, fast gradient ascent) and float32 (exact analysis).
    """
    model = build_model(dtype_policy=dtype_policy, dataset=dataset)
    model.set_weights([w.astype("float32") for w in weights])
    return model


def is_series_network(model) -> bool:
    """Whether `model` has the series' layer names and shapes (`series.LAYER_NAMES`): such a
    model is rebuilt with `build_model`, any other accepted model is cloned as it is."""
    names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return tuple(names) == LAYER_NAMES and all(
        tuple(model.get_layer(n).output.shape[1:]) == shape for n, shape in OUTPUT_SHAPES.items())


def with_policy(model, dtype_policy: str = "float32", path=None) -> keras.Model:
    """The same network and weights under another dtype policy (e.g. float32 for analysis).

    The series' network is rebuilt by `build_model` (`with_weights`), named after the data set
    it was trained on (`model_dataset`, with the metrics.json beside `path` when the model was
    loaded from a file); any other model accepted
    by `mnist_cnn.network.describe` is cloned layer by layer, the output Dense kept in float32.
    A linear output Dense becomes a softmax one (same weights): every analysis, and the
    training loss, reads class probabilities, and the logits stay its pre-activation.
    """
    if is_series_network(model):
        dataset = model_dataset(model, path) or "mnist"
        return with_weights(model.get_weights(), dtype_policy=dtype_policy, dataset=dataset)
    last = model.layers[-1].name

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name == last else dtype_policy
        if layer.name == last and config.get("activation") == "linear":
            config["activation"] = "softmax"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights([w.astype("float32") for w in model.get_weights()])
    return copy


def load_trained(path, dataset=None) -> keras.Model:
    """Load a saved model safely and return it as a float32 model with the same weights.

    Models are often trained under mixed_bfloat16; the analysis wants float32 activations and
    gradients, so the weights are copied into a float32 copy of the network (`with_policy`).
    Any model that `mnist_cnn.network.describe` accepts loads; the series' network keeps its
    data set in its name.

    Parameters
    ----------
    path : str or Path
    dataset : str, optional
        The data set the caller will use the model on; a model trained on another one, or
        whose output does not have that data set's classes, is refused. None: no check.

    Raises
    ------
    UserError
        If the file is missing, unreadable, of an architecture `describe` refuses, or trained
        on another data set than `dataset`.
    """
    from pathlib import Path

    from mnist_cnn.network import describe, peek

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no model at {path}; train one with `make train` or pass --model PATH")
    peek(path)  # an unsupported layer class is named before Keras refuses it less clearly
    try:
        saved = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad archive; all mean the same here
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load model {path} ({reason}); retrain with `make train`") from None
    classes = get_dataset(dataset).num_classes if dataset is not None else None
    describe(saved, f"model {path}", num_classes=classes)
    if dataset is not None:
        check_dataset(saved, dataset, f"model {path}", path)
    return with_policy(saved, "float32", path)


# Cuts: sub-models that share the trained weights (feature maps, OIPs, the ablation head).

def sub_model(model: keras.Model, layer_names) -> keras.Model:
    """A model from the input to the outputs of `layer_names` (a list), sharing weights."""
    return keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])


def linear_copy(layer):
    """The same layer with its activation removed (weights copied), for pre-activations."""
    config = layer.get_config()
    config.update(activation="linear", name=f"{layer.name}_pre")
    copy = layer.__class__.from_config(config)
    copy.build(tuple(layer.input.shape))
    copy.set_weights(layer.get_weights())
    return copy


def pre_activation_model(model, layer: str) -> keras.Model:
    """Model from the input image to the pre-activation of `layer` (its output for pools).

    Parameters
    ----------
    model : keras.Model
        The trained network (`mnist_cnn.model.load_trained`).
    layer : str
        A map or dense layer (`Network.targets`). For the output layer this gives the logits.

    Returns
    -------
    keras.Model
        Shares the trained weights up to the layer before; the activation of
        `Network.activation_of(layer)` applied to its output is the layer's output (a max-pool
        after a ReLU conv: max-pooling commutes with ReLU). Layers without an activation of
        their own (an average pool, a batch norm) are cut at their output.
    """
    from mnist_cnn.network import describe

    net = describe(model)
    if layer not in {i.name for i in net.targets}:
        raise UserError(f"unknown layer {layer!r}; choose from "
                        f"{', '.join(i.name for i in net.targets)}")
    active = net.activation_of(layer)
    if not active.is_unit:  # no activation to undo: the layer's own output
        return keras.Model(model.inputs[0], model.get_layer(layer).output, name=f"cut_{layer}_pre")
    before = net.layers[active.index - 1].name if active.index > 0 else None
    x = model.inputs[0] if before is None else model.get_layer(before).output
    x = linear_copy(model.get_layer(active.name))(x)
    for info in net.between(active.name, layer):  # max-pools (and dropouts) after the conv
        x = model.get_layer(info.name)(x)
    return keras.Model(model.inputs[0], x, name=f"cut_{layer}_pre")  # one tensor in, not a list


def head_model(model, start=None):
    """The rest of the network after layer `start`: a model from its output to the softmax.

    Used by the ablation: zero some maps of the last conv layer, then finish the forward pass.
    Shares the trained layers (and weights) with `model`.

    Parameters
    ----------
    model : keras.Model
    start : str, optional
        A layer of `model` (default its last Conv2D); the head takes that layer's output
        shape as input.

    Returns
    -------
    keras.Model
        From `start`'s output (batch, *shape) to class probabilities (batch, classes).
    """
    from mnist_cnn.network import describe

    net = describe(model)
    start = start or net.last_conv.name
    inputs = keras.Input(shape=net.layer(start).output_shape, name=f"{start}_maps")
    x = inputs
    for info in net.layers[net.layer(start).index + 1:]:
        x = model.get_layer(info.name)(x)
    return keras.Model(inputs, x, name=f"head_after_{start}")
