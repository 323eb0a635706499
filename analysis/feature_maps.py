"""Feature maps: what every layer of the trained CNN produces for a batch of images.

`FeatureExtractor` (or `extract` for one-off use) runs one multi-output cut of the network
(`mnist_cnn.model.sub_model`, sharing the trained weights) over the chosen layers, so a single
forward pass yields the maps of all layers at once. It runs in large batches inside a
`tf.function` (one trace for any batch size), which keeps all 10,000 test images through every
conv/pool layer and `dense_1` within a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mnist_cnn.errors import UserError
from mnist_cnn.model import sub_model
from mnist_cnn.series import MAP_LAYERS
from mnist_cnn.network import describe

# The series' network's feature layers (what `feature_layers` gives for it).
FEATURE_LAYERS = (*MAP_LAYERS, "dense_1")


def feature_layers(model) -> tuple:
    """Layers an analysis reads: every map-producing layer and the hidden dense layers."""
    net = describe(model)
    return tuple(i.name for i in (*net.map_layers, *net.hidden_dense))


class FeatureExtractor:
    """Maps of several layers for any batch of model-ready images.

    Parameters
    ----------
    model : keras.Model
        The trained network (see `mnist_cnn.model.load_trained`).
    layers : sequence of str
        Layer names, e.g. ("conv_1", "conv_3", "output"); default `feature_layers(model)`.
    batch_size : int
        Images per forward pass; large batches amortise the per-call overhead.
    """

    def __init__(self, model, layers=None, batch_size=2000):
        layers = feature_layers(model) if layers is None else layers
        names = describe(model).names
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise UserError(f"unknown layer {unknown[0] if unknown else layers!r}; "
                            f"choose from {', '.join(names)}")
        self.layers = tuple(layers)
        self.batch_size = int(batch_size)
        self.model = sub_model(model, list(self.layers))
        # One trace for every batch size: the batch dimension is left unknown.
        self._forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])

    def __call__(self, x) -> dict:
        """Run the images through the sub-model.

        Parameters
        ----------
        x : float32 array (N, 28, 28, 1) in [0, 1]

        Returns
        -------
        dict
            {layer name: float32 array (N, *layer output shape)}, in the order of `layers`.
        """
        x = np.asarray(x, dtype=np.float32)
        n = len(x)
        out = {}
        for start in range(0, max(n, 1), self.batch_size):
            batch = self._forward(tf.constant(x[start:start + self.batch_size]))
            batch = batch if isinstance(batch, (list, tuple)) else [batch]
            for name, value in zip(self.layers, batch):
                value = value.numpy()
                if name not in out:  # allocate once: concatenating would copy everything again
                    out[name] = np.empty((n, *value.shape[1:]), dtype=np.float32)
                out[name][start:start + len(value)] = value
        return out


def extract(model, x, layers=None, batch_size=2000) -> dict:
    """{layer name: activations (N, ...)} of `layers` for the images `x` (one-off use).

    Parameters
    ----------
    model : keras.Model
    x : float32 array (N, 28, 28, 1) in [0, 1]
    layers : sequence of str, optional (default `feature_layers(model)`)
    batch_size : int

    Returns
    -------
    dict of float32 arrays, one per layer.
    """
    return FeatureExtractor(model, layers, batch_size)(x)
