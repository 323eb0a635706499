"""Experiment single-image: filters as large as the image learn the image.

A tiny CNN (one Conv2D with 5 filters of 28x28, 'valid', so each filter yields one number per
image; then a Dense softmax) is trained on ONE MNIST training image of a 4. The loss gradient of
filter k is (dL/dz_k) * image, so every step adds a multiple of the image to each filter: the
filters start as Glorot noise (correlation with the image about 0) and end up as +/- copies of
it (large |r|). The conv layer is linear on purpose: a ReLU would freeze any filter whose first
response is negative.
"""

from __future__ import annotations

import numpy as np

from analysis.experiments.filters import draw_kernels, pearson

DIGIT = 4
N_FILTERS = 5
STEPS = 60
LR = 0.05
BATCH = 16

CAPTION = ("Why: filter k gives z_k = <w_k, x> + b_k, so dLoss/dw_k = (dLoss/dz_k) * x. "
           "Each SGD step therefore moves every filter along +x or -x, towards the image when "
           "raising z_k raises the right class's output. The step size also scales with dLoss/dz_k, "
           "so filters wired weakly to the output move less, and all stop once the loss is ~0.")


def first_image_of(x, y, digit=DIGIT):
    """Index of the first training image of `digit` (deterministic choice)."""
    return int(np.flatnonzero(y == digit)[0])


def build_single_image_cnn(n_filters=N_FILTERS, side=28):
    """Input (side, side, 1) -> Conv2D(n_filters, side x side, linear) -> Flatten -> Dense(10) softmax."""
    import keras

    return keras.Sequential([
        keras.Input((side, side, 1)),
        keras.layers.Conv2D(n_filters, side, padding="valid", name="image_filters"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="output"),
    ], name="single_image_cnn")


def train_on_one_image(image, label, steps=STEPS, lr=LR, batch=BATCH, seed=0):
    """Train the tiny CNN on one image (repeated `batch` times) and record the filters.

    Parameters
    ----------
    image : float32 array (28, 28) in [0, 1]
    label : int
    steps, lr, batch, seed : SGD steps, learning rate, copies per batch, seed of the initialisation

    Returns
    -------
    dict
        filters (steps + 1, n_filters, 28, 28) after each step (index 0: initialisation),
        correlation (steps + 1, n_filters) Pearson r of each filter with the image, loss (steps,).
    """
    import keras

    from mnist_cnn.pipeline import batches
    from mnist_cnn.training import seed_everything

    seed_everything(seed)
    model = build_single_image_cnn(side=image.shape[0])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    conv = model.get_layer("image_filters")
    snapshot = lambda: conv.get_weights()[0][:, :, 0, :].transpose(2, 0, 1).copy()  # noqa: E731
    filters = [snapshot()]
    recorder = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: filters.append(snapshot()))
    x = np.repeat(image[None, :, :, None], batch, axis=0).astype("float32")
    y = np.full(batch, label)
    history = model.fit(batches(x, y, batch), epochs=steps, callbacks=[recorder], verbose=0,
                        shuffle=False)
    filters = np.stack(filters)
    correlation = np.array([[pearson(f, image) for f in step] for step in filters])
    return {"filters": filters, "correlation": correlation,
            "loss": np.array(history.history["loss"])}


def plot_filters(image, before, after, r_before, r_after):
    """The image, the filters at initialisation and after training, each titled with its r."""
    import matplotlib.pyplot as plt

    n = len(before)
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n, 6.6))
    for ax in axes[0]:
        ax.axis("off")
    axes[0, n // 2].imshow(image, cmap="gray")
    axes[0, n // 2].set_title("the training image", fontsize=9)
    draw_kernels(axes[1], before, [f"init, r={r:+.2f}" for r in r_before])
    draw_kernels(axes[2], after, [f"trained, r={r:+.2f}" for r in r_after])
    fig.suptitle("Five 28x28 filters trained on one image of a 4 (r: Pearson correlation with the image)",
                 fontsize=10)
    fig.text(0.5, 0.0, CAPTION, ha="center", va="top", wrap=True, fontsize=8)
    return fig


def plot_correlation(correlation, loss):
    """|r| of each filter with the image, and the loss, against the training step."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(np.abs(correlation))
    a.set(xlabel="SGD step", ylabel="|r(filter, image)|", title="filters become the image", ylim=(0, 1))
    b.semilogy(np.arange(1, len(loss) + 1), loss)
    b.set(xlabel="SGD step", ylabel="cross-entropy", title="loss on the one image")
    fig.tight_layout()
    return fig


def run(out, seed=0, data=None, steps=STEPS):
    """Run the experiment and write figures, numbers and summary.json into the folder `out`.

    Returns
    -------
    dict
        The summary.
    """
    from mnist_cnn.data import load_mnist
    from mnist_cnn.fileio import save_figure, save_npz, write_json

    (x_train, y_train), _ = load_mnist(data)
    index = first_image_of(x_train, y_train)
    image = x_train[index].astype("float32") / 255.0
    result = train_on_one_image(image, int(y_train[index]), steps=steps, seed=seed)
    r = result["correlation"]
    save_figure(plot_filters(image, result["filters"][0], result["filters"][-1], r[0], r[-1]),
                out / "filters.png")
    save_figure(plot_correlation(r, result["loss"]), out / "correlation.png")
    save_npz(out / "single_image.npz", image=image, filters=result["filters"], correlation=r,
             loss=result["loss"])
    summary = {
        "experiment": "single-image", "seed": seed, "training_image_index": index, "digit": DIGIT,
        "filters": N_FILTERS, "steps": steps, "learning_rate": LR, "batch_copies": BATCH,
        "r_before": np.round(r[0], 4).tolist(), "r_after": np.round(r[-1], 4).tolist(),
        "mean_abs_r_before": round(float(np.abs(r[0]).mean()), 4),
        "mean_abs_r_after": round(float(np.abs(r[-1]).mean()), 4),
        "loss_first": round(float(result["loss"][0]), 4), "loss_last": round(float(result["loss"][-1]), 6),
    }
    write_json(out / "summary.json", summary)
    print(f"[single-image] mean |r| with the image: {summary['mean_abs_r_before']:.3f} at init -> "
          f"{summary['mean_abs_r_after']:.3f} after {steps} steps")
    return summary
