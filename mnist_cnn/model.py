"""The series' CNN: Conv(32)-Pool-Conv(64)-Pool-Conv(128)-MLP, as a Keras functional model.

Everything about the network lives here: building it, loading a trained one, moving its weights
between precisions, and every cut the analyses make through it (`sub_model` for feature maps,
`pre_activation_model` for OIPs, `head_model` for the ablation), so no analysis rebuilds layers.
Layer names are stable because those cuts are made at them: conv_1 pool_1 conv_2 pool_2 conv_3
flatten dense_1 output (the table is in `mnist_cnn.config`, which imports no Keras). Inputs are
28x28x1 images in [0, 1].
"""

from __future__ import annotations

import keras
from keras import layers

from mnist_cnn.config import (ACTIVATION_OF, INPUT_SHAPE, LAYER_NAMES, MODEL_NAMES, OUTPUT_SHAPES,
                              TARGET_LAYERS)
from mnist_cnn.datasets import get_dataset
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
        (`config.MODEL_NAMES`: "mnist_cnn", "mnist_cnn_fashion"), which the .keras file keeps.

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
    """The data set a model was trained on: from its name (`config.MODEL_NAMES`), else from the
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


def check_architecture(model, source="model") -> None:
    """Raise UserError unless `model` has this project's layers and shapes."""
    names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if tuple(names) != LAYER_NAMES:
        raise UserError(f"{source} is not the mnist_cnn architecture (layers {names}); "
                        "train one with `make train`")
    for name, shape in OUTPUT_SHAPES.items():
        got = tuple(model.get_layer(name).output.shape[1:])
        if got != shape:
            raise UserError(f"{source}: layer {name} outputs {got}, expected {shape}; "
                            "train one with `make train`")


def load_trained(path, dataset=None) -> keras.Model:
    """Load a saved model safely and return it as a float32 model with the same weights.

    Models are often trained under mixed_bfloat16; the analysis wants float32 activations and
    gradients, so the weights are copied into a freshly built float32 network (with the saved
    model's data set recorded in its name).

    Parameters
    ----------
    path : str or Path
    dataset : str, optional
        The data set the caller will use the model on; a model trained on another one is
        refused (`check_dataset`). None: no check.

    Raises
    ------
    UserError
        If the file is missing, unreadable, not of this architecture, or trained on another
        data set than `dataset`.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise UserError(f"no model at {path}; train one with `make train` or pass --model PATH")
    try:
        saved = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad archive; all mean the same here
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load model {path} ({reason}); retrain with `make train`") from None
    check_architecture(saved, f"model {path}")
    trained = model_dataset(saved, path) or "mnist"
    if dataset is not None:
        check_dataset(saved, dataset, f"model {path}", path)
    return with_weights(saved.get_weights(), dataset=trained)


# Cuts: sub-models that share the trained weights (feature maps, OIPs, the ablation head).

def sub_model(model: keras.Model, layer_names) -> keras.Model:
    """A model from the input to the outputs of `layer_names` (a list), sharing weights."""
    return keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])


def _linear_copy(layer):
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
        One of TARGET_LAYERS. For "output" this gives the logits.

    Returns
    -------
    keras.Model
        Shares the trained weights up to the layer before; `relu` of its output is the layer's
        activation (for "output" the output is the logit itself).
    """
    if layer not in ACTIVATION_OF:
        raise UserError(f"unknown layer {layer!r}; choose from {', '.join(TARGET_LAYERS)}")
    active = ACTIVATION_OF[layer]
    names = list(LAYER_NAMES)
    before = names[names.index(active) - 1] if names.index(active) > 0 else None
    x = model.inputs[0] if before is None else model.get_layer(before).output
    x = _linear_copy(model.get_layer(active))(x)
    if layer != active:  # a pool after the conv: max-pooling commutes with ReLU
        x = model.get_layer(layer)(x)
    return keras.Model(model.inputs[0], x, name=f"cut_{layer}_pre")  # one tensor in, not a list


def head_model(model, start="conv_3"):
    """The rest of the network after layer `start`: a model from its output to the softmax.

    Used by the ablation: zero some `conv_3` maps, then finish the forward pass. Shares the
    trained layers (and weights) with `model`.

    Parameters
    ----------
    model : keras.Model
    start : str
        A layer of `model`; the head takes that layer's output shape as input.

    Returns
    -------
    keras.Model
        From `start`'s output (batch, *shape) to class probabilities (batch, 10).
    """
    names = list(LAYER_NAMES)
    inputs = keras.Input(shape=tuple(model.get_layer(start).output.shape[1:]), name=f"{start}_maps")
    x = inputs
    for name in names[names.index(start) + 1:]:
        x = model.get_layer(name)(x)
    return keras.Model(inputs, x, name=f"head_after_{start}")
