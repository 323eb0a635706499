"""Experiment reference: the NumPy reference runs the series' CNN, and receptive fields are measured.

`mnist_cnn.numpy_reference` is tested layer by layer on random inputs; here it runs the real network's
map layers (conv_1 ... conv_3 with ReLU and max pooling) on test images and back-propagates
the centre conv_3 unit to the input, and both are compared with Keras and `tf.GradientTape`.
Then every input pixel is perturbed in turn (one batch of 785 images) to see which pixels change
the centre unit of each map layer: the measured receptive field, drawn against the box the
recursion r(l-1) = s(l) r(l) + k(l) - s(l) predicts. Uses models/mnist_cnn.keras (or `run`'s
`model`) when it exists, else the untrained architecture (seeded): geometry and equality do not
depend on training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_cnn import numpy_reference as ref
from mnist_cnn.config import DEFAULT_MODEL
from mnist_cnn.series import MAP_LAYERS

IMAGES = 64
PERTURBATION = 1.0


def numpy_maps(weights, x):
    """Forward pass of the map layers in NumPy (float64); returns pre-activations and outputs."""
    k1, b1, k2, b2, k3, b3 = (w.astype(np.float64) for w in weights[:6])
    s = {"x": x.astype(np.float64)}
    s["z1"] = ref.conv2d_forward(s["x"], k1, b1)
    s["conv_1"] = np.maximum(s["z1"], 0)
    s["pool_1"] = ref.max_pool_forward(s["conv_1"], 2)
    s["z2"] = ref.conv2d_forward(s["pool_1"], k2, b2)
    s["conv_2"] = np.maximum(s["z2"], 0)
    s["pool_2"] = ref.max_pool_forward(s["conv_2"], 2)
    s["z3"] = ref.conv2d_forward(s["pool_2"], k3, b3)
    s["conv_3"] = np.maximum(s["z3"], 0)
    return s


def numpy_input_gradient(weights, s, d_conv3):
    """Back-propagate a gradient on conv_3's output to the input through the NumPy reference."""
    k1, _, k2, _, k3, _ = (w.astype(np.float64) for w in weights[:6])
    dp2 = ref.conv2d_backward(s["pool_2"], k3, d_conv3 * (s["z3"] > 0))[0]
    dp1 = ref.conv2d_backward(s["pool_1"], k2, ref.max_pool_backward(s["conv_2"], dp2, 2) * (s["z2"] > 0))[0]
    return ref.conv2d_backward(s["x"], k1, ref.max_pool_backward(s["conv_1"], dp1, 2) * (s["z1"] > 0))[0]


def keras_maps_and_gradient(model, x, d_conv3):
    """Keras' map outputs and tf.GradientTape's input gradient of sum(conv_3 * d_conv3)."""
    import tensorflow as tf

    from mnist_cnn.model import sub_model

    maps = sub_model(model, list(MAP_LAYERS))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        outs = maps(xt)
        loss = tf.reduce_sum(outs[-1] * d_conv3)
    return dict(zip(MAP_LAYERS, (o.numpy() for o in outs))), tape.gradient(loss, xt).numpy()


def measured_fields(model, image, eps=PERTURBATION):
    """Which input pixels change the centre unit of each map layer (any channel) when raised by eps.

    Returns
    -------
    dict layer -> bool array (28, 28)
    """
    from mnist_cnn.model import sub_model
    from mnist_cnn.pipeline import batches

    side = image.shape[0]
    batch = np.repeat(image[None, :, :, None], side * side + 1, axis=0).astype("float32")
    batch[1 + np.arange(side * side), np.arange(side * side) // side, np.arange(side * side) % side, 0] += eps
    outs = sub_model(model, list(MAP_LAYERS)).predict(batches(batch, batch_size=256), verbose=0)
    fields = {}
    for name, out in zip(MAP_LAYERS, outs):
        c = out.shape[1] // 2
        centre = out[:, c, c, :]
        fields[name] = (np.abs(centre[1:] - centre[0]).max(axis=1) > 1e-6).reshape(side, side)
    return fields


def bounding_box(mask):
    """(rows, cols) half-open extent of the True pixels, or None."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1)


def plot_fields(image, masks, theory):
    """Per layer: pixels that change the centre unit (yellow) and the predicted receptive box (red)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, len(masks), figsize=(3 * len(masks), 3.3))
    for ax, (name, mask) in zip(axes, masks.items()):
        ax.imshow(image, cmap="gray")
        ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.6, vmin=0, vmax=1)
        (r0, r1), (c0, c1) = theory[name]
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="r", lw=1.5))
        ax.set_title(f"{name}: {r1 - r0}x{c1 - c0} predicted,\n{int(mask.sum())} pixels change the centre unit",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("receptive fields: one input pixel raised at a time (yellow: the centre unit changes)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_gradients(grad_numpy, grad_tf):
    """Input gradient of the centre conv_3 unit: NumPy reference vs tf.GradientTape."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    lim = np.abs(grad_tf).max() or 1.0
    for ax, g, title in zip(axes, (grad_numpy, grad_tf, grad_numpy - grad_tf),
                            ("NumPy reference", "tf.GradientTape", "difference")):
        im = ax.imshow(g, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{title}\nmax |.| {np.abs(g).max():.2e}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.suptitle("d(centre conv_3 unit, summed over channels)/d(input), first test image", fontsize=10)
    return fig


def load_model(seed, path=DEFAULT_MODEL):
    """The trained model at `path` if present, else the seeded untrained architecture; and its label."""
    from mnist_cnn.model import build_model, load_trained
    from mnist_cnn.training import seed_everything

    if Path(path).is_file():
        return load_trained(path), str(path)
    seed_everything(seed)
    return build_model(), f"untrained architecture (seed {seed})"


def run(out, seed=0, data=None, images=IMAGES, model=DEFAULT_MODEL):
    """Run the checks and write figures, numbers and summary.json into `out`.

    Parameters
    ----------
    out : Path, the folder to write into.
    seed : int, seeds the untrained architecture when there is no model.
    data : str, optional, explicit Keras-style mnist.npz.
    images : int, test images run through both implementations.
    model : str or Path, the trained model to check (default: the default model, if present).

    Returns
    -------
    dict
        The summary.
    """
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.fileio import save_figure, save_npz, write_json

    model, source = load_model(seed, model)
    _, (x_test, _) = load_mnist(data)
    x = to_input(x_test[:images])
    weights = model.get_weights()
    s = numpy_maps(weights, x)
    d_conv3 = np.zeros(s["conv_3"].shape, dtype="float32")
    d_conv3[:, 1, 1, :] = 1.0  # the centre unit of conv_3, all channels
    keras_maps, grad_tf = keras_maps_and_gradient(model, x, d_conv3)
    grad_np = numpy_input_gradient(weights, s, d_conv3)
    forward_diff = {n: float(np.abs(s[n] - keras_maps[n]).max()) for n in MAP_LAYERS}
    gradient_diff = float(np.abs(grad_np - grad_tf).max())
    gradient_box = bounding_box(np.abs(grad_np[0, :, :, 0]) > 0)

    fields = ref.receptive_fields(ref.layer_geometry(model))
    masks = measured_fields(model, x[0, :, :, 0])
    theory = {}
    for name, mask in masks.items():
        field, stride = fields[name]
        centre = keras_maps[name].shape[1] // 2
        theory[name] = ref.receptive_box(centre, centre, field, stride)
    measured = {n: bounding_box(m) for n, m in masks.items()}

    save_figure(plot_fields(x[0, :, :, 0], masks, theory), out / "receptive_fields.png")
    save_figure(plot_gradients(grad_np[0, :, :, 0], grad_tf[0, :, :, 0]), out / "gradient_check.png")
    save_npz(out / "reference.npz", grad_numpy=grad_np[:4], grad_tf=grad_tf[:4],
             **{f"changed_{n}": m for n, m in masks.items()})
    summary = {
        "experiment": "reference", "model": source, "images": images,
        "max_abs_diff_forward": {n: float(f"{d:.3g}") for n, d in forward_diff.items()},
        "max_abs_map_value": {n: round(float(np.abs(keras_maps[n]).max()), 3) for n in MAP_LAYERS},
        "max_abs_diff_input_gradient": float(f"{gradient_diff:.3g}"),
        "max_abs_input_gradient": round(float(np.abs(grad_tf).max()), 4),
        "conv3_centre_gradient_box": gradient_box,
        "receptive_field_predicted": {n: list(fields[n]) for n in MAP_LAYERS},
        "receptive_box_predicted": theory,
        "receptive_box_measured": measured,
        "measured_equals_predicted": all(measured[n] == theory[n] for n in MAP_LAYERS),
        "note": "float64 NumPy vs float32 Keras: differences are float32 round-off",
    }
    write_json(out / "summary.json", summary)
    print(f"[reference] {source}: NumPy vs Keras max |diff| forward "
          + ", ".join(f"{n} {d:.1e}" for n, d in forward_diff.items())
          + f"; input gradient {gradient_diff:.1e}")
    print("[reference] receptive fields predicted " + ", ".join(f"{n} {fields[n][0]}" for n in MAP_LAYERS)
          + f"; perturbation boxes equal the predicted ones: {summary['measured_equals_predicted']}")
    return summary
