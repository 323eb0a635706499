"""A NumPy reference for what the CNN's layers compute, and the receptive fields of its maps.

Keras hides convolution and pooling behind fused kernels; this module spells them out in a few
vectorised NumPy lines (`sliding_window_view` + `einsum`, no Python loops over pixels) so the
tests can check, against Keras and `tf.GradientTape`, that we know exactly what is computed:

* `conv2d_forward`: cross-correlation (what deep-learning "convolution" means) with stride and
  padding 'valid', 'same' (TensorFlow's rule) or 'full'; `convolve2d` is the true convolution,
  the same with the kernel flipped.
* `conv2d_backward`: the input gradient is a *full convolution* of the (stride-dilated) output
  gradient with the kernel, the kernel gradient is the *correlation* of the input with the output
  gradient, the bias gradient is the output gradient summed over positions.
* max and average pooling forward/backward, global pooling.
* `receptive_fields`: the recursion r(l-1) = s(l) r(l) + k(l) - s(l) from one unit of a map down
  to the input, read from the Keras model's own layer settings; `print_info` is
  `python -m mnist_cnn info`.

Arrays are channels-last like Keras: images (N, H, W, C), kernels (kh, kw, C_in, C_out).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mnist_cnn.network import padding_amounts  # TensorFlow's "same" rule


# --- padding -------------------------------------------------------------------------------

def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def pad_images(x, kernel, stride, padding, value=0.0):
    """Pad (N, H, W, C) images spatially; returns the padded array and ((top, bottom), (left, right))."""
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    pads = (padding_amounts(x.shape[1], kh, sh, padding), padding_amounts(x.shape[2], kw, sw, padding))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value), pads


def windows(xp, kernel, stride):
    """Strided (N, H_out, W_out, C, kh, kw) view of every kernel-sized window of padded images."""
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    return sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]


# --- convolution ---------------------------------------------------------------------------

def conv2d_forward(x, w, b=None, stride=1, padding="valid"):
    """Cross-correlation of images with a bank of kernels, as Keras' Conv2D computes it.

    Parameters
    ----------
    x : array (N, H, W, C_in)
    w : array (kh, kw, C_in, C_out)
    b : array (C_out,), optional
    stride : int or (int, int)
    padding : 'valid', 'same' or 'full'

    Returns
    -------
    array (N, H_out, W_out, C_out)
        y[n, i, j, f] = b[f] + sum_{u, v, c} xp[n, i*s + u, j*s + v, c] * w[u, v, c, f].
    """
    xp, _ = pad_images(x, w.shape[:2], stride, padding)
    y = np.einsum("nhwcuv,uvcf->nhwf", windows(xp, w.shape[:2], stride), w, optimize=True)
    return y if b is None else y + b


def convolve2d(x, w, b=None, stride=1, padding="valid"):
    """True convolution: cross-correlation with the kernel flipped in both spatial axes."""
    return conv2d_forward(x, w[::-1, ::-1], b, stride, padding)


def dilate(dy, stride):
    """Insert stride - 1 zeros between the rows and columns of (N, H, W, C) maps."""
    sh, sw = _pair(stride)
    n, h, w, c = dy.shape
    out = np.zeros((n, (h - 1) * sh + 1, (w - 1) * sw + 1, c), dtype=dy.dtype)
    out[:, ::sh, ::sw] = dy
    return out


def conv2d_backward(x, w, dy, stride=1, padding="valid"):
    """Gradients of a loss with respect to the input, kernel and bias of `conv2d_forward`.

    Parameters
    ----------
    x, w, stride, padding : as for `conv2d_forward`
    dy : array (N, H_out, W_out, C_out)
        Gradient of the loss with respect to the layer's output.

    Returns
    -------
    dx : array like x
        Full convolution of the stride-dilated `dy` with the kernel (in/out channels swapped),
        cropped back to the unpadded input.
    dw : array like w
        Correlation of the padded input with `dy`: dw[u, v, c, f] = sum xp[n, i*s+u, j*s+v, c] dy[n, i, j, f].
    db : array (C_out,)
        `dy` summed over images and positions.
    """
    kh, kw = w.shape[:2]
    xp, ((top, _), (left, _)) = pad_images(x, (kh, kw), stride, padding)
    dw = np.einsum("nhwcuv,nhwf->uvcf", windows(xp, (kh, kw), stride), dy, optimize=True)
    # Full convolution = 'full' correlation with the flipped kernel; in/out channels swap roles.
    dxp = convolve2d(dilate(dy, stride), w.transpose(0, 1, 3, 2), padding="full")
    # Rows/columns that no window reached (stride remainder) get no gradient.
    dxp = np.pad(dxp, ((0, 0), (0, xp.shape[1] - dxp.shape[1]), (0, xp.shape[2] - dxp.shape[2]), (0, 0)))
    dx = dxp[:, top:top + x.shape[1], left:left + x.shape[2]]
    return dx, dw, dy.sum(axis=(0, 1, 2))


# --- pooling -------------------------------------------------------------------------------

def _pool_windows(x, pool, stride, padding, fill):
    pool = _pair(pool)
    stride = pool if stride is None else _pair(stride)
    if padding not in ("valid", "same"):
        raise ValueError(f"pooling padding must be 'valid' or 'same', got {padding!r}")
    xp, pads = pad_images(x, pool, stride, padding, value=fill)
    return xp, pads, pool, stride, windows(xp, pool, stride)


def _scatter_add(shape, pads, stride, pool, grads):
    """Sum per-window-element gradients (N, Ho, Wo, C, ph, pw) back onto the unpadded input."""
    n, ho, wo, c, ph, pw = grads.shape
    rows = (np.arange(ho) * stride[0])[:, None] + np.arange(ph)[None, :]  # (Ho, ph)
    cols = (np.arange(wo) * stride[1])[:, None] + np.arange(pw)[None, :]  # (Wo, pw)
    idx = np.ix_(np.arange(n), np.arange(ho), np.arange(wo), np.arange(c), np.arange(ph), np.arange(pw))
    out = np.zeros((n, shape[1] + sum(pads[0]), shape[2] + sum(pads[1]), c), dtype=grads.dtype)
    np.add.at(out, (idx[0], rows[idx[1], idx[4]], cols[idx[2], idx[5]], idx[3]), grads)
    return out[:, pads[0][0]:pads[0][0] + shape[1], pads[1][0]:pads[1][0] + shape[2]]


def max_pool_forward(x, pool=2, stride=None, padding="valid"):
    """Max pooling like Keras' MaxPooling2D (stride defaults to the pool size; 'same' pads with -inf).

    Returns
    -------
    array (N, H_out, W_out, C)
    """
    *_, win = _pool_windows(x, pool, stride, padding, -np.inf)
    return win.max(axis=(4, 5))


def max_pool_backward(x, dy, pool=2, stride=None, padding="valid"):
    """Input gradient of max pooling: each window's gradient goes to its (first) maximum.

    Returns
    -------
    array like x
        Overlapping windows (stride < pool) add their contributions.
    """
    xp, pads, pool, stride, win = _pool_windows(x, pool, stride, padding, -np.inf)
    n, ho, wo, c, ph, pw = win.shape
    flat = win.reshape(n, ho, wo, c, ph * pw)
    first_max = flat.argmax(axis=-1)[..., None] == np.arange(ph * pw)
    grads = (first_max * dy[..., None]).reshape(win.shape)
    return _scatter_add(x.shape, pads, stride, pool, grads)


def avg_pool_forward(x, pool=2, stride=None, padding="valid"):
    """Average pooling like Keras' AveragePooling2D ('same' averages over the real pixels only).

    Returns
    -------
    array (N, H_out, W_out, C)
    """
    xp, pads, pool, stride, win = _pool_windows(x, pool, stride, padding, 0.0)
    return win.sum(axis=(4, 5)) / _window_counts(x.shape, pads, pool, stride)


def _window_counts(shape, pads, pool, stride):
    """How many real (unpadded) pixels each pooling window covers, shaped (1, Ho, Wo, 1)."""
    ones = np.ones((1, shape[1], shape[2], 1))
    ones = np.pad(ones, ((0, 0), pads[0], pads[1], (0, 0)))
    return windows(ones, pool, stride).sum(axis=(4, 5))


def avg_pool_backward(x, dy, pool=2, stride=None, padding="valid"):
    """Input gradient of average pooling: each window spreads dy / (pixels in it) evenly.

    Returns
    -------
    array like x
    """
    xp, pads, pool, stride, win = _pool_windows(x, pool, stride, padding, 0.0)
    share = dy / _window_counts(x.shape, pads, pool, stride)
    grads = np.broadcast_to(share[..., None, None], win.shape)
    return _scatter_add(x.shape, pads, stride, pool, grads)


def global_avg_pool(x):
    """(N, H, W, C) -> (N, C): the mean of each map."""
    return x.mean(axis=(1, 2))


def global_avg_pool_backward(x, dy):
    """Gradient of `global_avg_pool`: dy / (H W) at every position."""
    return np.broadcast_to(dy[:, None, None, :] / (x.shape[1] * x.shape[2]), x.shape).copy()


def global_max_pool(x):
    """(N, H, W, C) -> (N, C): the maximum of each map."""
    return x.max(axis=(1, 2))


def global_max_pool_backward(x, dy):
    """Gradient of `global_max_pool`: dy at each map's (first) maximum, zero elsewhere."""
    return max_pool_backward(x, dy[:, None, None, :], pool=x.shape[1:3])


# --- receptive fields ----------------------------------------------------------------------

def layer_geometry(model):
    """(name, kernel, stride) along one spatial axis for every map layer of a Keras model.

    Conv2D gives its kernel_size and strides, pooling its pool_size and strides; layers that
    do not look at neighbourhoods (activations, flatten, dense) are left out.
    """
    geometry = []
    for layer in model.layers:
        config = layer.get_config()
        size = config.get("kernel_size", config.get("pool_size"))
        if size is None or "strides" not in config:
            continue
        k, s = _pair(size), _pair(config["strides"])
        if k[0] != k[1] or s[0] != s[1]:
            raise ValueError(f"{layer.name}: only square kernels and strides are handled")
        geometry.append((layer.name, k[0], s[0]))
    return geometry


def receptive_fields(geometry):
    """Receptive field (pixels) and effective stride of one unit of each layer's map.

    Parameters
    ----------
    geometry : list of (name, kernel, stride), input to output (see `layer_geometry`)

    Returns
    -------
    dict name -> (receptive_field, effective_stride)
        From the unit itself (r = 1) down to the input with r(l-1) = s(l) r(l) + k(l) - s(l);
        the effective stride (input pixels between neighbouring units) is the product of strides.
    """
    fields = {}
    for depth, (name, _, _) in enumerate(geometry):
        r = 1
        for _, k, s in reversed(geometry[:depth + 1]):
            r = s * r + k - s
        fields[name] = (r, int(np.prod([s for _, _, s in geometry[:depth + 1]])))
    return fields


def receptive_box(row, col, field, stride):
    """Input rows/columns (half-open) seen by the unit at (row, col) of a map without padding."""
    return (row * stride, row * stride + field), (col * stride, col * stride + field)


def format_info(net, name: str) -> str:
    """The `info` table of a described network (`mnist_cnn.network.describe`)."""
    rows = net.rows()
    w_name = max([9] + [len(r["layer"]) + 1 for r in rows])
    w_type = max([14] + [len(r["type"]) + 1 for r in rows])
    lines = [f"{name}: input {net.input_shape}, {net.parameters:,} parameters",
             f"{'layer':<{w_name}}{'type':<{w_type}}{'output':>14}{'params':>10}"
             f"{'receptive field':>18}{'stride':>8}"]
    for r in rows:
        shape = "x".join(map(str, r["output_shape"]))
        field = f"{r['receptive_field']}x{r['receptive_field']}"
        stride = "-" if r["effective_stride"] is None else str(r["effective_stride"])
        lines.append(f"{r['layer']:<{w_name}}{r['type']:<{w_type}}{shape:>14}{r['parameters']:>10,}"
                     f"{field:>18}{stride:>8}")
    lines.append("receptive field: input pixels one unit sees, from r(l-1) = s(l) r(l) + k(l) - s(l); "
                 "stride: input pixels between neighbouring units")
    return "\n".join(lines)


def print_info(model=None):
    """`python -m mnist_cnn info`: the layers, shapes, parameters and receptive fields of
    `model` (default: the series' network, untrained)."""
    from mnist_cnn.model import build_model
    from mnist_cnn.network import describe

    model = build_model() if model is None else model
    print(format_info(describe(model), model.name))
    return 0
