"""mnist_cnn: the CNN of "A simple CNN for the MNIST dataset", trained and looked inside, and
any other small Keras CNN of yours (docs/own-model.md).

The Python API (docs/api.md), for a notebook::

    import mnist_cnn as mc
    model = mc.train(mc.TrainConfig(epochs=2))        # the series' network, the recipe
    model = mc.load_model("models/mnist_cnn.keras")   # or any accepted .keras model
    (x_train, y_train), (x_test, y_test) = mc.load_dataset("mnist")
    net = mc.describe(model)                          # layers, sizes, receptive fields

and in `analysis`: feature maps, class comparison, OIPs, the report, the explorer site.

Importing the package is cheap: every name below is imported on first use, and TensorFlow only
by the modules that need it, so the command line can reject bad arguments instantly.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> (module, attribute): what `import mnist_cnn as mc` offers, imported on first use.
_API = {
    "TrainConfig": ("mnist_cnn.config", "TrainConfig"),
    "train": ("mnist_cnn.api", "train"),
    "load_model": ("mnist_cnn.api", "load_model"),
    "load_dataset": ("mnist_cnn.api", "load_dataset"),
    "to_input": ("mnist_cnn.data", "to_input"),
    "build_model": ("mnist_cnn.model", "build_model"),
    "describe": ("mnist_cnn.network", "describe"),
    "UserError": ("mnist_cnn.errors", "UserError"),
    # what the tour notebook uses beside them
    "evaluate_model": ("mnist_cnn.evaluate", "evaluate"),
    "plot_confusion": ("mnist_cnn.evaluate", "plot_confusion"),
    "top_confusions": ("mnist_cnn.evaluate", "top_confusions"),
    "head_model": ("mnist_cnn.model", "head_model"),
    "load_ink": ("mnist_cnn.images", "load_ink"),
    "to_field": ("mnist_cnn.images", "to_field"),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        module, attribute = _API[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'mnist_cnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
