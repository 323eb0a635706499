"""Arithmetic of a training epoch, counted from a model's layer shapes (`make bench` divides it
by the measured seconds for the achieved GFLOP/s).

A convolution costs 2 x kernel area x channels in x channels out per output position (one
multiply and one add each), a dense layer 2 x inputs x outputs; the backward pass costs about
twice the forward one (the gradients of the inputs and of the weights), so a training step is
3x the forward arithmetic. Pooling, activations and the optimiser's update are left out: they
are a fraction of a percent of this network's work.
"""

from __future__ import annotations

FORWARD_AND_BACKWARD = 3


def layer_flops(layer) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of one image through one Conv2D or Dense layer;
    0 for any other layer.

    Parameters
    ----------
    layer : keras.layers.Layer
        Built, with a known output shape.

    Returns
    -------
    int
    """
    import keras

    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, c_in, c_out = layer.kernel.shape
        _, oh, ow, _ = layer.output.shape
        return int(2 * kh * kw * c_in * c_out * oh * ow)
    if isinstance(layer, keras.layers.Dense):
        n_in, n_out = layer.kernel.shape
        return int(2 * n_in * n_out)
    return 0


def forward_flops(model) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of one image through `model`'s Conv2D and Dense
    layers (`layer_flops` summed).

    Parameters
    ----------
    model : keras.Model
        Built, with known output shapes.

    Returns
    -------
    int
    """
    return sum(layer_flops(layer) for layer in model.layers)


def epoch_flops(model, images: int) -> int:
    """FLOPs of one training epoch of `images` images (forward + backward, see module doc).

    Parameters
    ----------
    model : keras.Model
    images : int

    Returns
    -------
    int
    """
    return FORWARD_AND_BACKWARD * forward_flops(model) * images
