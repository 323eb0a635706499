"""The data sets: MNIST and Fashion-MNIST, offline-first and SHA-256-verified, and the facts
about them that the command line checks before anything heavy is imported.

Modules: `registry` (class names, how to say "class", `get_dataset`, `class_index`; standard
library only), `verify` (the Keras cache, .npz reading, content digests), `sources` (the one
source chain: cache -> Keras download -> verified mirror), `mnist` and `fashion` (what differs:
their files, digests and mirrors). This package's own import is cheap (no NumPy until a loader
runs), so `mnist_cnn.data.registry` costs nothing more than its module.

>>> (x_train, y_train), (x_test, y_test) = load_dataset("fashion")  # doctest: +SKIP
"""

from __future__ import annotations


def load_mnist(path=None):
    """MNIST, offline-first and verified: `mnist_cnn.data.mnist.load_mnist` (its docstring
    has the parameters, the sources tried and the errors)."""
    from mnist_cnn.data.mnist import load_mnist as load

    return load(path)


def load_fashion(path=None):
    """Fashion-MNIST, offline-first and verified: `mnist_cnn.data.fashion.load_fashion` (its
    docstring has the parameters, the sources tried and the errors)."""
    from mnist_cnn.data.fashion import load_fashion as load

    return load(path)


def load_dataset(name="mnist", path=None):
    """`(x_train, y_train), (x_test, y_test)` of data set `name` ("mnist" or "fashion").

    Parameters
    ----------
    name : "mnist" or "fashion" (also "Fashion-MNIST"; `registry.get_dataset`).
    path : an explicit Keras-style .npz, or None for the data set's sources.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : uint8 arrays.

    Raises
    ------
    UserError
        An unknown name (one line listing the valid ones), or what the loader raises.
    """
    from mnist_cnn.data.registry import get_dataset

    if get_dataset(name).name == "mnist":
        return load_mnist(path)
    return load_fashion(path)


def to_input(x):
    """uint8 images (N, 28, 28) -> float32 model inputs (N, 28, 28, 1) in [0, 1].

    Parameters
    ----------
    x : numpy.ndarray of uint8 images.

    Returns
    -------
    numpy.ndarray, float32, with a channel axis.
    """
    import numpy as np

    return (x.astype(np.float32) / 255.0)[..., None]
