"""The description of a network, read from the Keras model itself (issue #17).

Every analysis takes its layers and sizes from `describe(model)`: per layer its kind, output
shape, kernel, stride, padding, activation and receptive field, computed from the model's own
settings. The series' network (`mnist_cnn.model.build_model`) is one model among others.

Accepted: Sequential or functional chains (no branches, no shared layers) of Conv2D,
MaxPooling2D, AveragePooling2D, BatchNormalization, Dropout, Flatten, GlobalAveragePooling2D,
GlobalMaxPooling2D and Dense on (28, 28, 1) inputs, ending in a softmax or linear Dense (the
classes). Anything else is refused with one line (`UserError`) naming the layer and what is
supported.

Receptive fields follow the usual recursion along one spatial axis (Dumoulin & Visin, "A guide
to convolution arithmetic"): jump j' = j s, field r' = r + (k - 1) j, centre of output pixel 0
start' = start + ((k - 1) / 2 - pad_before) j, where pad_before is TensorFlow's for 'same'.
This module imports no TensorFlow: it reads what the Keras model already knows.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from mnist_cnn.errors import UserError

INPUT_SHAPE = (28, 28, 1)
PADDINGS = ("valid", "same", "full")

# Keras class name -> kind; what `describe` accepts.
KINDS = {"Conv2D": "conv", "MaxPooling2D": "max_pool", "AveragePooling2D": "avg_pool",
         "BatchNormalization": "batch_norm", "Dropout": "dropout", "Flatten": "flatten",
         "GlobalAveragePooling2D": "global_avg_pool", "GlobalMaxPooling2D": "global_max_pool",
         "Dense": "dense"}
SUPPORTED = ("supported: a chain of Conv2D, MaxPooling2D, AveragePooling2D, BatchNormalization, "
             "Dropout, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, Dense on 28x28x1 "
             "inputs, ending in a softmax or linear Dense (docs/own-model.md)")
# Activations f with f(max(a, b)) = max(f(a), f(b)) (non-decreasing): a max-pool of f(z) is f of
# the max-pool of z, so a pool's pre-activation is the pool of its conv's pre-activation.
MONOTONE = {"relu", "linear", "sigmoid", "tanh", "elu", "selu", "softplus", "relu6",
            "leaky_relu", "hard_sigmoid", "softsign", "exponential"}


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the chain (see the module docstring and docs/own-model.md)."""

    name: str                      # the model's own layer name
    kind: str                      # a value of KINDS
    output_shape: tuple            # without the batch axis: (26, 26, 32) or (70,)
    channels: int                  # output_shape[-1]
    kernel_size: tuple | None      # conv kernel or pool size, (kh, kw)
    strides: tuple | None
    padding: str | None            # "valid" / "same"
    activation: str | None         # conv / dense only
    receptive_field: int | None    # side of the input square one output pixel sees (maps only)
    jump: int | None               # input pixels between neighbouring output pixels
    start: float | None            # input coordinate of output pixel (0, 0)'s centre
    is_unit: bool                  # conv or dense: the units the analyses look at
    parameters: int = 0            # trainable and non-trainable weights
    keras_class: str = ""          # "Conv2D", ...
    index: int = 0                 # position in the chain, from 0

    @property
    def is_map(self) -> bool:
        """True when the output is (H, W, C) maps."""
        return len(self.output_shape) == 3

    def box(self, row: int, col: int, side: int = INPUT_SHAPE[0]):
        """Input rows and columns (half-open, clipped to the image) that output pixel (row, col)
        sees: ((top, bottom), (left, right))."""
        if self.receptive_field is None:
            return (0, side), (0, side)
        half = (self.receptive_field - 1) / 2
        first = [int(round(self.start + i * self.jump - half)) for i in (row, col)]
        return tuple((max(f, 0), min(f + self.receptive_field, side)) for f in first)


@dataclass(frozen=True)
class Network:
    """What every analysis needs to know about a model: `describe(model)`."""

    name: str
    input_shape: tuple
    layers: tuple                  # LayerInfo, in order, InputLayer excluded

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise UserError(f"the model has no layer {name!r}; its layers: "
                        f"{', '.join(i.name for i in self.layers)}")

    @property
    def names(self) -> tuple:
        return tuple(i.name for i in self.layers)

    @property
    def units(self) -> tuple:
        return tuple(i for i in self.layers if i.is_unit)

    @property
    def conv_layers(self) -> tuple:
        return tuple(i for i in self.layers if i.kind == "conv")

    @property
    def map_layers(self) -> tuple:
        return tuple(i for i in self.layers if i.is_map)

    @property
    def dense_layers(self) -> tuple:
        return tuple(i for i in self.layers if i.kind == "dense")

    @property
    def hidden_dense(self) -> tuple:
        return self.dense_layers[:-1]

    @property
    def output_layer(self) -> LayerInfo:
        return self.layers[-1]

    @property
    def last_conv(self) -> LayerInfo | None:
        return self.conv_layers[-1] if self.conv_layers else None

    @property
    def num_classes(self) -> int:
        return self.output_layer.channels

    @property
    def parameters(self) -> int:
        return sum(i.parameters for i in self.layers)

    @property
    def targets(self) -> tuple:
        """Layers an OIP can target: the map layers and the dense layers."""
        return tuple(i for i in self.layers if i.is_map or i.kind == "dense")

    def below(self, name: str) -> LayerInfo | None:
        """The unit layer that feeds `name` (the previous conv or dense), None for the first."""
        before = [i for i in self.layers[:self.layer(name).index] if i.is_unit]
        return before[-1] if before else None

    def above(self, name: str) -> LayerInfo | None:
        """The unit layer that `name` feeds, None for the output layer."""
        after = [i for i in self.layers[self.layer(name).index + 1:] if i.is_unit]
        return after[0] if after else None

    def between(self, first: str, last: str) -> tuple:
        """The layers after `first` up to and including `last`."""
        return self.layers[self.layer(first).index + 1:self.layer(last).index + 1]

    def activation_of(self, name: str) -> LayerInfo:
        """The layer whose activation function the output of `name` ends with.

        A conv or dense layer is its own. A max-pool or dropout after a conv with a monotone
        activation (ReLU) gives that conv: the pool's pre-activation is the pool of the conv's.
        Any other layer (an average pool, a batch norm) is its own: its output is the value.
        """
        info = self.layer(name)
        j = info.index
        while self.layers[j].kind in ("max_pool", "dropout", "global_max_pool") and j > 0:
            j -= 1
        found = self.layers[j]
        if found.is_unit and (found is info or found.activation in MONOTONE):
            return found
        return info

    def rows(self):
        """One dict per layer for `info`: name, type, output shape, parameters, receptive field
        (the input side for layers whose units see the whole image), effective stride."""
        side = self.input_shape[0]
        return [{"layer": i.name, "type": i.keras_class, "output_shape": i.output_shape,
                 "parameters": i.parameters,
                 "receptive_field": side if i.receptive_field is None else i.receptive_field,
                 "effective_stride": i.jump} for i in self.layers]


def padding_amounts(size, kernel, stride, padding):
    """Zeros added before and after one spatial axis.

    'valid' adds none; 'same' follows TensorFlow (output ceil(size / stride), the odd zero goes
    after); 'full' adds kernel - 1 on both sides, so every partial overlap counts.

    Returns
    -------
    (int, int)
    """
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return kernel - 1, kernel - 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")


def _refuse(source, layer, what):
    raise UserError(f"{source}: layer {layer!r} {what}; {SUPPORTED}")


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _chain(model, source):
    """The model's layers from input to output, following its own graph (so extra nodes that
    cuts such as `head_model` add to shared layers do not count). UserError for branches."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError, TypeError):
        raise UserError(f"{source} has no input shape (build it with keras.Input((28, 28, 1))); "
                        f"{SUPPORTED}") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{source} has {len(inputs)} inputs and {len(outputs)} outputs, not one "
                        f"each; {SUPPORTED}")
    chain, tensor = [], outputs[0]
    while tensor is not inputs[0]:
        operation, node_index, _ = tensor._keras_history
        if type(operation).__name__ == "InputLayer":
            raise UserError(f"{source}: the output does not depend on its input; {SUPPORTED}")
        node = operation._inbound_nodes[node_index]
        if len(node.input_tensors) != 1:
            _refuse(source, operation.name, f"({type(operation).__name__}) merges "
                    f"{len(node.input_tensors)} branches")
        chain.append(operation)
        tensor = node.input_tensors[0]
    chain.reverse()
    names = [layer.name for layer in chain]
    for name in names:
        if names.count(name) > 1:
            _refuse(source, name, "is applied more than once")
    extra = [layer.name for layer in model.layers
             if type(layer).__name__ != "InputLayer" and layer.name not in names]
    if extra:
        _refuse(source, extra[0], "is not on the path from input to output (a branch)")
    return chain, inputs[0]


def _shape(tensor):
    return tuple(int(d) if d is not None else None for d in tensor.shape[1:])


def _activation(layer):
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", None) if fn is not None else None


def describe(model, source: str = "model", num_classes: int | None = None) -> Network:
    """Describe a Keras model layer by layer, or refuse it.

    Parameters
    ----------
    model : keras.Model
        Sequential or functional, built (its input shape known).
    source : str
        How error messages name the model, e.g. "model models/x.keras".
    num_classes : int, optional
        The data set's class count; a model whose output has another size is refused.

    Returns
    -------
    Network

    Raises
    ------
    UserError
        One line naming the offending layer (or shape) and what is supported.

    The description of an accepted model is computed once and kept beside it (weakly: it goes
    with the model), so the many analyses that ask for it share one; a model whose layers
    changed since is described again.
    """
    key = (model.name, tuple(id(layer) for layer in model.layers))
    known = _DESCRIBED.get(model)
    if known is not None and known[0] == key:
        net = known[1]
    else:
        net = _describe(model, source)
        _DESCRIBED[model] = (key, net)
    if num_classes is not None and net.num_classes != num_classes:
        raise UserError(f"{source}: its output layer {net.output_layer.name!r} has "
                        f"{net.num_classes} units, but the data set has {num_classes} classes; "
                        "pass the model's data set with --dataset (DATASET=) or another --model")
    return net


_DESCRIBED = weakref.WeakKeyDictionary()  # model -> (its name and layers' ids, Network)


def _describe(model, source: str) -> Network:
    """`describe` without the cache and the class-count check."""
    chain, inp = _chain(model, source)
    in_shape = _shape(inp)
    if in_shape != INPUT_SHAPE:
        raise UserError(f"{source} takes inputs of shape {in_shape}, not {INPUT_SHAPE} "
                        f"(28x28 greyscale); {SUPPORTED}")
    infos, jump, field, start, flat = [], 1, 1, 0.0, False
    size = INPUT_SHAPE[0]
    for index, layer in enumerate(chain):
        cls = type(layer).__name__
        kind = KINDS.get(cls)
        if kind is None:
            _refuse(source, layer.name, f"is a {cls}, which is not supported")
        config = layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            _refuse(source, layer.name, "is channels_first")
        shape = _shape(layer.output)
        kernel = strides = padding = None
        if kind in ("conv", "max_pool", "avg_pool"):
            kernel = _pair(config["kernel_size"] if kind == "conv" else config["pool_size"])
            strides = _pair(config.get("strides") or kernel)
            padding = config["padding"]
            if kind == "conv" and (_pair(config.get("dilation_rate", 1)) != (1, 1)
                                   or config.get("groups", 1) != 1):
                _refuse(source, layer.name, "is dilated or grouped (dilation_rate 1 and groups 1 "
                        "are supported)")
            if kernel[0] != kernel[1] or strides[0] != strides[1]:
                _refuse(source, layer.name, f"has a {kernel[0]}x{kernel[1]} kernel and strides "
                        f"{strides}; square kernels and strides are supported")
            k, s = kernel[0], strides[0]
            before, _ = padding_amounts(size, k, s, padding)
            start = start + ((k - 1) / 2 - before) * jump
            field = field + (k - 1) * jump
            jump = jump * s
        if kind == "dense" and not flat:
            _refuse(source, layer.name, "is a Dense on maps; put a Flatten or a global pooling "
                    "before it")
        if kind in ("flatten", "global_avg_pool", "global_max_pool"):
            flat = True
        if len(shape) == 3:
            if flat:
                _refuse(source, layer.name, f"outputs maps {shape} after a Flatten")
            size = shape[0]
        elif len(shape) != 1:
            _refuse(source, layer.name, f"outputs shape {shape}")
        maps = len(shape) == 3
        activation = _activation(layer) if kind in ("conv", "dense") else None
        infos.append(LayerInfo(
            name=layer.name, kind=kind, output_shape=shape, channels=shape[-1],
            kernel_size=kernel, strides=strides, padding=padding, activation=activation,
            receptive_field=field if maps else None, jump=jump if maps else None,
            start=start if maps else None, is_unit=kind in ("conv", "dense"),
            parameters=int(layer.count_params()), keras_class=cls, index=index))
    if not infos or infos[-1].kind != "dense":
        last = infos[-1].name if infos else "(none)"
        _refuse(source, last, "is the last layer; the model must end in a Dense over the classes")
    if infos[-1].activation not in ("softmax", "linear"):
        _refuse(source, infos[-1].name, f"ends in a {infos[-1].activation} activation; the "
                "output Dense must be softmax or linear")
    return Network(name=model.name, input_shape=in_shape, layers=tuple(infos))


def peek(path):
    """The layers of a .keras file read from its config.json, without TensorFlow: a list of
    (name, Keras class, channels), channels being a conv's filters or a dense's units (a pool or
    a batch norm keeps the channels before it; None where unknown). UserError for a layer class
    `describe` does not accept; None when the file is not a readable archive (Keras says why
    when it loads it).

    The command line checks --layer and --maps with it before importing TensorFlow.
    """
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        layers = config["config"]["layers"]
        model_class = config.get("class_name")
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None
    if model_class not in ("Functional", "Sequential", "Model"):
        raise UserError(f"model {path} is a {model_class}; {SUPPORTED}")
    table, channels = [], None
    for layer in layers:
        cls, cfg = layer.get("class_name"), layer.get("config", {})
        name = cfg.get("name", layer.get("name"))
        if cls == "InputLayer":
            continue
        if cls not in KINDS:
            raise UserError(f"model {path}: layer {name!r} is a {cls}, which is not supported; "
                            f"{SUPPORTED}")
        channels = cfg.get("filters", cfg.get("units", channels))
        if cls == "Flatten":
            channels = None
        table.append((name, cls, channels))
    return table


def series_table():
    """What `peek` returns for the series' network (the default model before it is trained)."""
    from mnist_cnn import series

    classes = {"conv": "Conv2D", "pool": "MaxPooling2D", "flatten": "Flatten", "dense": "Dense",
               "output": "Dense"}
    return [(name, classes[name.split("_")[0]],
             None if name == "flatten" else series.OUTPUT_SHAPES[name][-1])
            for name in series.LAYER_NAMES]
