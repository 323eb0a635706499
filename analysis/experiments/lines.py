"""Experiment lines: a CNN trained to tell horizontal from vertical lines rediscovers Prewitt.

The data are 50x50 images of one bright line each (random position, length and thickness, a
little Gaussian noise; seeded), 600 per class. A small CNN (Conv2D 8 kernels of 7x7 + ReLU,
global max pooling, Dense softmax) learns the task; its first-layer kernels are saved after every
epoch (animated GIF, before/after grids). Each trained kernel is compared with the Prewitt edge
operators: the best |Pearson r| over the 3x3 kernel embedded (zero-padded) at each of the 25
positions of a 7x7 grid and the 3x3 kernel stretched to 7x7 (three rows of -1, a row of 0,
three rows of +1). A kernel whose best |r| with one orientation is >= THRESHOLD and above its
best with the other is named an edge detector of that orientation.
"""

from __future__ import annotations

import numpy as np

from analysis.experiments.filters import correlation_matrix, draw_kernels

SIZE = 50
PER_CLASS = 600
KERNELS = 8
KERNEL_SIZE = 7
EPOCHS = 20
THRESHOLD = 0.5
CLASSES = ("horizontal", "vertical")
PREWITT_H = np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], dtype=float)  # horizontal edges


def make_lines(per_class=PER_CLASS, size=SIZE, seed=0, noise=0.1):
    """Two-class images of one horizontal (label 0) or vertical (label 1) line.

    Parameters
    ----------
    per_class : int
        Images per class.
    size : int
        Image side in pixels.
    seed : int
        Seed of every random choice (same seed, same images).
    noise : float
        Standard deviation of the Gaussian pixel noise (values are clipped to [0, 1]).

    Returns
    -------
    x : float32 array (2 * per_class, size, size) in [0, 1]
    y : int array (2 * per_class,), balanced, in shuffled order
    """
    rng = np.random.default_rng(seed)
    n = 2 * per_class
    y = rng.permutation(np.repeat([0, 1], per_class))
    length = rng.integers(size // 4, size - 4, n)
    thick = rng.integers(1, 4, n)
    along = rng.integers(0, size - length + 1)           # start along the line
    across = rng.integers(0, size - thick + 1)           # position across it
    grid = np.arange(size)
    in_len = (grid[None] >= along[:, None]) & (grid[None] < (along + length)[:, None])      # (n, size)
    in_thick = (grid[None] >= across[:, None]) & (grid[None] < (across + thick)[:, None])  # (n, size)
    horizontal = in_thick[:, :, None] & in_len[:, None, :]  # rows across, columns along
    lines = np.where(y[:, None, None] == 0, horizontal, horizontal.transpose(0, 2, 1))
    x = np.clip(lines + rng.normal(0, noise, lines.shape), 0, 1).astype("float32")
    return x, y


def prewitt_templates(size=KERNEL_SIZE):
    """7x7 versions of the Prewitt operators: (templates_h, templates_v), each (26, size, size).

    The 3x3 kernel zero-padded at each of the (size-2)^2 positions, plus the stretched kernel.
    """
    templates = []
    for i in range(size - 2):
        for j in range(size - 2):
            t = np.zeros((size, size))
            t[i:i + 3, j:j + 3] = PREWITT_H
            templates.append(t)
    templates.append(np.sign(np.arange(size) - size // 2)[:, None] * np.ones((1, size)))
    h = np.stack(templates)
    return h, h.transpose(0, 2, 1)


def prewitt_scores(kernels):
    """Best |r| of each kernel with the horizontal and the vertical Prewitt templates.

    Parameters
    ----------
    kernels : array (k, 7, 7)

    Returns
    -------
    dict with best_h, best_v (k,), sign_h, sign_v (k,) (the sign of r at the best template:
    +1 dark-to-bright downwards / rightwards) and kinds, a list of 'horizontal', 'vertical' or ''.
    """
    h, v = prewitt_templates(kernels.shape[-1])
    flat = kernels.reshape(len(kernels), -1).T
    out = {}
    for name, t in (("h", h), ("v", v)):
        r = correlation_matrix(flat, t.reshape(len(t), -1).T)  # (k, templates)
        best = np.abs(r).argmax(axis=1)
        out[f"best_{name}"] = np.abs(r[np.arange(len(r)), best])
        out[f"sign_{name}"] = np.sign(r[np.arange(len(r)), best]).astype(int)
    out["kinds"] = ["horizontal" if bh >= THRESHOLD and bh > bv else
                    "vertical" if bv >= THRESHOLD and bv > bh else ""
                    for bh, bv in zip(out["best_h"], out["best_v"])]
    return out


def build_lines_cnn(size=SIZE, kernels=KERNELS, kernel_size=KERNEL_SIZE):
    """Conv2D(kernels, kernel_size, ReLU) -> global max pooling -> Dense(2) softmax."""
    import keras

    return keras.Sequential([
        keras.Input((size, size, 1)),
        keras.layers.Conv2D(kernels, kernel_size, activation="relu", name="conv"),
        keras.layers.GlobalMaxPooling2D(name="pool"),
        keras.layers.Dense(2, activation="softmax", name="output"),
    ], name="lines_cnn")


def train_lines(x_fit, y_fit, x_test, y_test, epochs=EPOCHS, seed=0, lr=0.05, batch=32):
    """Train the lines CNN, keeping the first-layer kernels after every epoch.

    Returns
    -------
    dict
        model, kernels (epochs + 1, k, 7, 7) (index 0: initialisation), test_accuracy,
        accuracy (per epoch, training).
    """
    import keras

    from mnist_cnn.pipeline import batches
    from mnist_cnn.training import seed_everything

    seed_everything(seed)
    model = build_lines_cnn(size=x_fit.shape[1])
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    conv = model.get_layer("conv")
    snapshot = lambda: conv.get_weights()[0][:, :, 0, :].transpose(2, 0, 1).copy()  # noqa: E731
    kernels = [snapshot()]
    recorder = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: kernels.append(snapshot()))
    history = model.fit(batches(x_fit[..., None], y_fit, batch, shuffle_seed=seed), epochs=epochs,
                        verbose=0, callbacks=[recorder], shuffle=False)  # the dataset shuffles
    _, accuracy = model.evaluate(batches(x_test[..., None], y_test), verbose=0)
    return {"model": model, "kernels": np.stack(kernels), "test_accuracy": float(accuracy),
            "accuracy": np.array(history.history["accuracy"])}


def conv_maps(model, images):
    """First-layer maps (after ReLU) of `images` (n, size, size) -> (n, H, W, k)."""
    import keras

    from mnist_cnn.pipeline import batches

    return keras.Model(model.inputs, model.get_layer("conv").output).predict(batches(images[..., None]),
                                                                            verbose=0)


def kernel_titles(scores):
    """One title per kernel: its index, best |r| with Prewitt H and V, and the detector kind."""
    return [f"{i}: H {h:.2f} V {v:.2f}" + (f"\n{kind}" if kind else "\n-")
            for i, (h, v, kind) in enumerate(zip(scores["best_h"], scores["best_v"], scores["kinds"]))]


def plot_before_after(before, after, scores):
    """Kernels at initialisation (top) and trained (bottom), titled with their Prewitt scores."""
    import matplotlib.pyplot as plt

    k = len(before)
    fig, axes = plt.subplots(2, k, figsize=(1.6 * k, 4.2))
    draw_kernels(axes[0], before, [f"{i}: init" for i in range(k)])
    draw_kernels(axes[1], after, kernel_titles(scores))
    fig.suptitle(f"7x7 kernels before/after; best |r| with Prewitt H/V (detector if >= {THRESHOLD})",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_feature_maps(images, maps, scores):
    """One horizontal and one vertical line image with the 8 maps each."""
    import matplotlib.pyplot as plt

    k = maps.shape[-1]
    fig, axes = plt.subplots(2, k + 1, figsize=(1.5 * (k + 1), 3.6))
    vmax = maps.max() or 1.0
    for row, (image, m, name) in enumerate(zip(images, maps, CLASSES)):
        axes[row, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(f"{name} line", fontsize=8)
        for i in range(k):
            axes[row, i + 1].imshow(m[..., i], cmap="magma", vmin=0, vmax=vmax)
            if row == 0:
                axes[row, i + 1].set_title(f"kernel {i}" + (f"\n{scores['kinds'][i]}" if scores["kinds"][i] else "\n-"),
                                           fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("first-layer maps after ReLU (one colour scale)", fontsize=9)
    fig.tight_layout()
    return fig


def kernel_frames(kernels, dpi=80):
    """One RGB image (H, W, 3) per epoch of the kernel grid, for the GIF."""
    import matplotlib.pyplot as plt

    frames = []
    k = kernels.shape[1]
    for epoch, step in enumerate(kernels):
        fig, axes = plt.subplots(1, k, figsize=(1.2 * k, 1.6), dpi=dpi)
        draw_kernels(axes, step, [str(i) for i in range(k)])
        fig.suptitle(f"epoch {epoch}" + (" (initialisation)" if epoch == 0 else ""), fontsize=9)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    return frames


def save_gif(frames, path, ms_per_frame=400):
    """Write frames as a looping animated GIF, atomically (the last frame is held longer)."""
    from PIL import Image

    from mnist_cnn.fileio import atomic_path

    images = [Image.fromarray(f) for f in frames]
    durations = [ms_per_frame] * (len(images) - 1) + [2000]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)


def run(out, seed=0, data=None, per_class=PER_CLASS, epochs=EPOCHS):
    """Run the experiment and write figures, the GIF, numbers and summary.json into `out`.

    Returns
    -------
    dict
        The summary.
    """
    from mnist_cnn.fileio import save_figure, save_npz, write_json

    x, y = make_lines(per_class, seed=seed)
    n_test = len(x) // 5  # the generator shuffles, so the last 20% is a balanced-ish test set
    result = train_lines(x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], epochs=epochs, seed=seed)
    kernels = result["kernels"]
    scores = prewitt_scores(kernels[-1])
    scores_init = prewitt_scores(kernels[0])
    test_x, test_y = x[-n_test:], y[-n_test:]
    examples = np.stack([test_x[np.flatnonzero(test_y == c)[0]] for c in (0, 1)])
    maps = conv_maps(result["model"], examples)

    save_figure(plot_before_after(kernels[0], kernels[-1], scores), out / "kernels_before_after.png")
    save_figure(plot_feature_maps(examples, maps, scores), out / "feature_maps.png")
    save_gif(kernel_frames(kernels), out / "kernels.gif")
    save_npz(out / "lines.npz", kernels=kernels, best_h=scores["best_h"], best_v=scores["best_v"],
             sign_h=scores["sign_h"], sign_v=scores["sign_v"], example_images=examples, example_maps=maps,
             train_accuracy=result["accuracy"])
    summary = {
        "experiment": "lines", "seed": seed, "images_per_class": per_class, "image_size": SIZE,
        "train_images": len(x) - n_test, "test_images": n_test, "epochs": epochs,
        "kernels": KERNELS, "kernel_size": KERNEL_SIZE, "test_accuracy": round(result["test_accuracy"], 4),
        "prewitt_7x7": "best |r| over the 3x3 Prewitt zero-padded at each of 25 positions and stretched to 7x7",
        "detector_threshold": THRESHOLD,
        "best_r_horizontal": np.round(scores["best_h"], 3).tolist(),
        "best_r_vertical": np.round(scores["best_v"], 3).tolist(),
        "horizontal_detectors": [i for i, k in enumerate(scores["kinds"]) if k == "horizontal"],
        "vertical_detectors": [i for i, k in enumerate(scores["kinds"]) if k == "vertical"],
        "detectors_at_initialisation": sum(bool(k) for k in scores_init["kinds"]),
        "mean_best_r_init": round(float(np.maximum(scores_init["best_h"], scores_init["best_v"]).mean()), 3),
        "mean_best_r_trained": round(float(np.maximum(scores["best_h"], scores["best_v"]).mean()), 3),
    }
    write_json(out / "summary.json", summary)
    print(f"[lines] test accuracy {summary['test_accuracy']:.1%}; horizontal edge detectors "
          f"{summary['horizontal_detectors']}, vertical {summary['vertical_detectors']} "
          f"(best |r| with Prewitt >= {THRESHOLD}); mean best |r| {summary['mean_best_r_init']} at init -> "
          f"{summary['mean_best_r_trained']}")
    return summary
