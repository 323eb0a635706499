"""The functions `import mnist_cnn as mc` offers for a notebook (docs/api.md).

Each takes plain values and returns arrays or models; none reads the working directory except
through the paths it is given (a `TrainConfig`'s `out_dir`, a model's path).
"""

from __future__ import annotations

from mnist_cnn.config import TrainConfig


def train(config: TrainConfig | None = None, model=None, verbose: int = 1):
    """Train with the recipe and return the trained model (float32, ready for the analyses).

    Parameters
    ----------
    config : TrainConfig, optional
        The run (default `TrainConfig()`: the measured recipe, written to models/).
    model : keras.Model, optional
        Your own untrained network (any model `mnist_cnn.describe` accepts, with the data set's
        classes) instead of the series' one; it keeps its own regularisers.
    verbose : int
        1: Keras' per-epoch progress bar; 0: quiet.

    Returns
    -------
    keras.Model
        Loaded back from `config.model_path` (where it was written with metrics.json and the
        figures), as `load_model` gives it.
    """
    from mnist_cnn.training import train as run

    config = config or TrainConfig()
    run(config, verbose=verbose, model=model)
    return load_model(config.model_path, dataset=config.dataset)


def load_model(path, dataset: str | None = None):
    """A saved model, loaded in Keras' safe mode and copied to float32 for analysis.

    Parameters
    ----------
    path : str or Path of a .keras file.
    dataset : "mnist" or "fashion", optional: refuse a model trained on the other one or whose
        output does not have its classes.

    Raises
    ------
    mnist_cnn.UserError
        Missing or unreadable file, or an architecture that is not accepted (docs/own-model.md).
    """
    from mnist_cnn.model import load_trained

    return load_trained(path, dataset=dataset)


def load_dataset(name: str = "mnist", path=None):
    """((x_train, y_train), (x_test, y_test)) of "mnist" or "fashion": uint8 images
    (N, 28, 28) and int labels, verified; `mc.to_input(x)` makes model-ready float32
    (N, 28, 28, 1) in [0, 1]. `path`: an explicit Keras-style .npz."""
    from mnist_cnn.data import load_dataset as load

    return load(name, path)
