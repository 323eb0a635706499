"""What the predict report shows, as arrays: the answer, every layer's maps, the last conv
layer's most active maps, the attribution maps with their faithfulness, and the nearest
training images in the last hidden layer's space.

Layers are read from the Keras model (which output maps, which is the last conv, which is the
last hidden layer), never from a table, so the report follows the model it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.attribution.verdicts import measure
from analysis.attribution.methods import target_weights
from analysis.feature_maps import FeatureExtractor
from mnist_cnn.fileio import save_npz, sha256_file
from mnist_cnn.model import sub_model
from mnist_cnn.network import describe


def hidden_layer_name(model) -> str:
    """The layer that feeds the output Dense: the last hidden layer."""
    net = describe(model)
    return net.layers[net.output_layer.index - 1].name if net.output_layer.index else "input"


class FieldMaps:
    """Every map layer's maps and the last hidden layer's vector for one 28x28 field, from one
    cut built once per run (called eagerly: one image would not repay a trace)."""

    def __init__(self, model):
        self.names = [info.name for info in describe(model).map_layers]
        self.hidden = hidden_layer_name(model)
        self.cut = sub_model(model, [*self.names, self.hidden])

    def __call__(self, field: np.ndarray) -> dict:
        """{layer: (H, W, C) maps} of `field`, and the hidden layer's vector under "hidden"."""
        outs = self.cut([field[None, ..., None].astype(np.float32)], training=False)  # sub_model's inputs are a list
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        result = {n: np.asarray(o[0]) for n, o in zip(self.names, outs[:-1])}
        result["hidden"] = np.asarray(outs[-1][0])
        return result


def hidden_features(model, x, batch: int = 5000) -> np.ndarray:
    """The last hidden layer's activations (N, units) of images x (N, 28, 28, 1)."""
    name = hidden_layer_name(model)
    return FeatureExtractor(model, [name], batch_size=batch)(x)[name]


def training_features(model, digest, dataset, data_path, cache_dir) -> tuple:
    """(features (N, units) float16, labels, images uint8) of the training images, cached in
    `cache_dir` under the model file's SHA-256 `digest` (computed once per model: ~60,000
    forward passes)."""
    from mnist_cnn.data import load_dataset, to_input

    key = f"{dataset}-{digest[:16]}"
    if data_path:
        key += f"-{sha256_file(data_path)[:8]}"
    path = Path(cache_dir) / f"neighbours-{key}.npz"
    (x_train, y_train), _ = load_dataset(dataset, data_path or None)
    if path.is_file():
        try:
            with np.load(path) as f:
                if len(f["features"]) == len(x_train):
                    return f["features"].astype(np.float32), y_train, x_train
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    features = hidden_features(model, to_input(x_train))
    save_npz(path, features=features.astype(np.float16))
    return features, y_train, x_train


def nearest(features: np.ndarray, query: np.ndarray, k: int = 8) -> tuple:
    """Indices of the k rows of `features` nearest to `query` (Euclidean) and their distances."""
    d = np.sqrt(np.maximum(((features - query[None]) ** 2).sum(axis=1), 0))
    idx = np.argsort(d, kind="stable")[:k]
    return idx, d[idx]


def top_maps(maps: np.ndarray, k: int = 8) -> tuple:
    """Indices of the k most active maps of a (H, W, C) stack (mean activation), and the means."""
    mean = np.asarray(maps).reshape(-1, maps.shape[-1]).mean(axis=0)
    idx = np.argsort(-mean, kind="stable")[:k]
    return idx, mean[idx]


def answer(probabilities: np.ndarray, k: int = 3) -> list:
    """[(class, probability)] of the k most probable classes."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(c), float(probabilities[c])) for c in order]


def attributions(attributor, field: np.ndarray, label: int, contrast: int, steps: int = 16) -> dict:
    """Every method's map of one field for logit(label) and for logit(label) - logit(contrast),
    with the faithfulness numbers of the class maps ("class") and of the difference ("pair")."""
    x = field[None, ..., None].astype(np.float32)
    num = attributor.num_classes
    return {"class": measure(attributor, x, target_weights([label], None, num), steps=steps),
            "pair": measure(attributor, x, target_weights([label], [contrast], num), steps=steps)}


def last_conv(model):
    """Name of the last conv layer, or None."""
    last = describe(model).last_conv
    return last.name if last is not None else None
