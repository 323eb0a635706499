"""Test-set evaluation: accuracy, loss, per-class accuracy, confusion matrix, and their plots."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix


def predict(model, x, batch_size=1000) -> np.ndarray:
    """Class probabilities (N, classes) for model-ready inputs."""
    from mnist_cnn.pipeline import batches

    return np.asarray(model.predict(batches(x, batch_size=batch_size), verbose=0))


def evaluate(model, x, y, probabilities=None) -> dict:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix.

    Parameters
    ----------
    model : keras.Model
    x : float32 array (N, 28, 28, 1) in [0, 1]
    y : int array (N,)
    probabilities : array (N, K), optional
        Precomputed predictions (skips running the model).

    Returns
    -------
    dict with accuracy, loss (floats), per_class_accuracy (list of K), confusion_matrix
    ((K, K) int array, rows true, columns predicted), predicted (N,), probabilities (N, K);
    K, the number of classes, is the model's output size.

    A model with a linear output (logits) is evaluated on their softmax.
    """
    p = predict(model, x) if probabilities is None else probabilities
    if probabilities is None and _linear_output(model):
        z = p - p.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = np.asarray(y).astype(int)
    predicted = p.argmax(axis=1)
    cm = confusion_matrix(y, predicted, labels=range(p.shape[1]))
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))
    per_class = (np.diag(cm) / np.maximum(cm.sum(axis=1), 1)).round(6).tolist()
    return {"accuracy": float((predicted == y).mean()), "loss": loss,
            "per_class_accuracy": per_class, "confusion_matrix": cm,
            "predicted": predicted, "probabilities": p}


def _linear_output(model) -> bool:
    """Whether the model's last layer outputs logits (a linear Dense) rather than probabilities."""
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "linear"


def top_confusions(cm: np.ndarray, k=5) -> list:
    """The k largest off-diagonal cells as (true, predicted, count), largest first."""
    off = np.array(cm, copy=True)
    np.fill_diagonal(off, 0)
    n = off.shape[1]
    order = np.argsort(off, axis=None)[::-1][:k]
    return [(int(i // n), int(i % n), int(off.flat[i])) for i in order if off.flat[i] > 0]


def format_confusion(cm: np.ndarray) -> str:
    """The confusion matrix as a text table (rows: true class, columns: predicted)."""
    lines = ["true\\pred " + " ".join(f"{j:>5d}" for j in range(len(cm)))]
    lines += [f"{i:>9d} " + " ".join(f"{v:>5d}" for v in row) for i, row in enumerate(cm)]
    return "\n".join(lines)


def plot_confusion(cm: np.ndarray, dataset="mnist"):
    """Figure with the confusion matrix as counts and row-normalised, side by side; axes labelled
    with the data set's class names ("T-shirt/top", ... for Fashion-MNIST, digits for MNIST)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnist_cnn.data.registry import get_dataset

    info = get_dataset(dataset)
    labels = list(range(len(cm))) if info.name == "mnist" else list(info.class_names)
    named = info.name != "mnist"
    fig, axes = plt.subplots(1, 2, figsize=(14, 6.4) if named else (13, 5.6))
    ConfusionMatrixDisplay(cm, display_labels=labels).plot(
        ax=axes[0], colorbar=False, cmap="Blues", values_format="d",
        xticks_rotation=45 if named else "horizontal")
    axes[0].set_title("counts")
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ConfusionMatrixDisplay(norm, display_labels=labels).plot(
        ax=axes[1], colorbar=False, cmap="Blues", values_format=".3f",
        xticks_rotation=45 if named else "horizontal")
    for t in axes[1].texts:
        t.set_fontsize(6)
    axes[1].set_title(f"row-normalised (recall per true {info.class_noun})")
    fig.suptitle((f"{info.title}: " if named else "") +
                 f"test accuracy {np.trace(cm) / cm.sum():.4%} on {cm.sum()} images")
    if named:
        fig.tight_layout()
    return fig


def plot_learning_curves(history: dict, floor=0.9):
    """Loss, accuracy and learning rate per epoch, training and validation (accuracy axis from
    `floor` at the lowest)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.asarray(history["epoch"]) + 1
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key in zip(axes[:2], ("loss", "accuracy")):
        ax.plot(epochs, history[key], "o-", label="training")
        if f"val_{key}" in history:  # epochs without validation hold None
            val = np.array([np.nan if v is None else v for v in history[f"val_{key}"]])
            ax.plot(epochs[~np.isnan(val)], val[~np.isnan(val)], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(f"{key} (training loss includes the L2 term)" if key == "loss" else key)
        ax.legend()
    if "accuracy" in history:
        axes[1].set_ylim(max(floor, min(history["accuracy"]) - 0.01), 1.0)
    axes[2].plot(epochs, history.get("learning_rate", history.get("lr", [])), "o-")
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch")
    for ax in axes:
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
