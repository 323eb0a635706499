"""Experiment two-runs: do two independent trainings learn the same filters, in the same order?

The series' CNN is trained twice with the project's recipe (SGD + momentum, one-cycle schedule, L2,
in the precision `auto` resolves to on this machine), briefly (EPOCHS epochs on the 50,000 non-validation training images), with seeds
`seed` and `seed + 1`. The filters of run A are then matched one-to-one to those of run B with
the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`, maximising the summed Pearson r):

* conv_1 on kernel correlation (the 3x3 weights) and on activation correlation (the 26x26 maps
  over ACT_IMAGES_CONV1 test images, every position a sample);
* conv_3 on activation correlation (3x3 maps over all test images).

Chance level: the same matching of run A's trained filters against run B *at initialisation*
(Glorot noise), so "high" can be read against what 32 or 128 candidates give by luck. Also
written: run A's conv_1 kernels before/after training and weight histograms at initialisation
(Glorot uniform) and after.
"""

from __future__ import annotations

import time

import numpy as np

from analysis.experiments.filters import (activations_as_columns, correlation_matrix,
                                          draw_kernel_grid, kernels_as_columns, match_filters)
from mnist_cnn.precision import resolve

EPOCHS = 3  # 4 took 2 x 127 s on a slow 2-core AVX2 host; make experiments must stay under 300 s
TRAIN_LIMIT = 0  # all 50,000 training images (the last 10,000 are validation)
ACT_IMAGES_CONV1 = 1000
NEAR_IDENTICAL = 0.9


def train_run(seed, epochs=EPOCHS, train_limit=TRAIN_LIMIT, data=None, test_images=None):
    """Train the series' CNN briefly with the project's recipe, keeping the initial weights.

    Returns
    -------
    dict
        init and trained (lists of float32 weight arrays, Keras order), seconds, test_accuracy
        (on the first `test_images` test images; None: all 10,000), batch_size, lr and
        warmup_epochs of the recipe (its warm-up included: at the peak rate from the first step,
        8 and 23 of the two runs' 32 conv_1 maps died in 3 epochs, 0 and 1 with it).
    """
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.pipeline import batches, training_dataset
    from mnist_cnn.training import compiled_model, seed_everything, split, steps_per_epoch

    config = TrainConfig(epochs=epochs, train_limit=train_limit, seed=seed,
                         data=data or "")
    seed_everything(seed)
    (x_fit, y_fit), _, (x_test, y_test) = split(config)
    model = compiled_model(config, steps=steps_per_epoch(config, len(x_fit)))
    init = [w.astype("float32") for w in model.get_weights()]
    started = time.perf_counter()
    model.fit(training_dataset(x_fit, y_fit, config), epochs=epochs, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(batches(x_test[:test_images], y_test[:test_images]), verbose=0)
    return {"init": init, "trained": [w.astype("float32") for w in model.get_weights()],
            "seconds": seconds, "test_accuracy": float(accuracy), "train_images": len(x_fit),
            "batch_size": config.batch_size, "lr": config.lr, "warmup_epochs": config.warmup_epochs}


def map_reader(layers=("conv_1", "conv_3"), batch_size=500):
    """`read(weights, images, layer) -> maps`: the feature maps of `layer` for `images`
    (N, 28, 28, 1) under any weight set (a list in Keras order), float32.

    One network serves every weight set (its weights are swapped), so `predict` traces once per
    layer: a new model per weight set traced anew each time, and after five TensorFlow printed a
    retracing warning."""
    from mnist_cnn.model import build_model, sub_model
    from mnist_cnn.pipeline import batches

    network = build_model(dtype_policy="float32")
    cuts = {layer: sub_model(network, [layer]) for layer in layers}

    def read(weights, images, layer):
        network.set_weights([w.astype("float32") for w in weights])
        return cuts[layer].predict(batches(images, batch_size=batch_size), verbose=0)

    return read


def conv_kernel(weights, layer="conv_1"):
    """The kernel of a conv layer from a weight list in Keras order (conv_1: 0, conv_2: 2, conv_3: 4)."""
    return weights[{"conv_1": 0, "conv_2": 2, "conv_3": 4}[layer]]


def matching_stats(corr, threshold=NEAR_IDENTICAL):
    """Hungarian matching of a correlation matrix and numbers that describe it.

    Returns
    -------
    dict
        perm, matched (arrays) and plain numbers: mean/median/min/max/quantiles of the matched r,
        near_identical (pairs with r >= threshold), fixed_points (filters matched to the same index;
        a random order has 1 on average), mean_displacement (mean |i - perm[i]|; random about p/3).
    """
    perm, matched = match_filters(corr)
    p = len(perm)
    return {
        "perm": perm, "matched": matched,
        "mean": round(float(matched.mean()), 4), "median": round(float(np.median(matched)), 4),
        "min": round(float(matched.min()), 4), "max": round(float(matched.max()), 4),
        "q10": round(float(np.quantile(matched, 0.1)), 4), "q90": round(float(np.quantile(matched, 0.9)), 4),
        "near_identical": int((matched >= threshold).sum()), "filters": p,
        "fixed_points": int((perm == np.arange(p)).sum()),
        "mean_displacement": round(float(np.abs(perm - np.arange(p)).mean()), 2),
        "random_order_mean_displacement": round((p * p - 1) / (3 * p), 2),
    }


def compare_runs(run_a, run_b, x_test, conv1_images=ACT_IMAGES_CONV1):
    """All matchings of the experiment (trained A vs trained B, and vs B at initialisation).

    Returns
    -------
    dict name -> matching_stats, for conv1_kernels, conv1_activations, conv3_activations and the
    same three with suffix _chance; activation matchings also count dead maps (they correlate 0).
    """
    read = map_reader()

    def maps(weights):  # conv_1 maps are 26x26x32 floats per image: only the first images
        return read(weights, x_test[:conv1_images], "conv_1"), read(weights, x_test, "conv_3")

    out = {}
    conv1_a, conv3_a = maps(run_a["trained"])
    for tag, weights_b in (("", run_b["trained"]), ("_chance", run_b["init"])):
        conv1_b, conv3_b = maps(weights_b)
        ka, kb = kernels_as_columns(conv_kernel(run_a["trained"])), kernels_as_columns(conv_kernel(weights_b))
        out["conv1_kernels" + tag] = matching_stats(correlation_matrix(ka, kb))
        out["conv1_activations" + tag] = matching_stats(correlation_matrix(
            activations_as_columns(conv1_a), activations_as_columns(conv1_b)))
        out["conv3_activations" + tag] = matching_stats(correlation_matrix(
            activations_as_columns(conv3_a), activations_as_columns(conv3_b)))
        for name, a, b in (("conv1_activations", conv1_a, conv1_b), ("conv3_activations", conv3_a, conv3_b)):
            out[name + tag].update(dead_maps_a=dead_maps(a), dead_maps_b=dead_maps(b))
    return out


def dead_maps(maps):
    """How many maps are zero on every image and position (ReLU units that never fire)."""
    return int((activations_as_columns(maps).max(axis=0) <= 0).sum())


def plot_matched_kernels(kernels_a, kernels_b, perm, matched, title):
    """Run A's conv_1 kernels (left, sorted by matched r) beside their Hungarian partners in run B."""
    import matplotlib.pyplot as plt

    order = np.argsort(-matched)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 3.9), gridspec_kw={"wspace": 0.05})
    draw_kernel_grid(left, kernels_a[order], [f"A{i}" for i in order])
    draw_kernel_grid(right, kernels_b[perm[order]], [f"B{perm[i]} r={matched[i]:.2f}" for i in order])
    fig.suptitle(title, fontsize=10)
    return fig


def plot_matched_correlations(results):
    """Histograms of matched r for each matching, trained B (bars) vs B at initialisation (line)."""
    import matplotlib.pyplot as plt

    names = ("conv1_kernels", "conv1_activations", "conv3_activations")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    bins = np.linspace(-0.2, 1, 25)
    for ax, name in zip(axes, names):
        ax.hist(results[name]["matched"], bins=bins, alpha=0.8, label="A vs B trained")
        ax.hist(results[name + "_chance"]["matched"], bins=bins, histtype="step", lw=2, color="k",
                label="A vs B at init (chance)")
        ax.axvline(NEAR_IDENTICAL, color="r", ls="--", lw=1)
        r = results[name]
        ax.set(title=f"{name.replace('_', ' ')}: {r['near_identical']}/{r['filters']} r>={NEAR_IDENTICAL}",
               xlabel="matched Pearson r", ylabel="filters")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_before_after(init_kernels, trained_kernels):
    """Run A's 32 conv_1 kernels at initialisation (left) and trained (right)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 3.9), gridspec_kw={"wspace": 0.05})
    draw_kernel_grid(left, init_kernels, [f"{i} init" for i in range(len(init_kernels))])
    draw_kernel_grid(right, trained_kernels, [f"{i} trained" for i in range(len(trained_kernels))])
    fig.suptitle("conv_1 kernels of run A: Glorot-uniform initialisation (left), after training (right)", fontsize=10)
    return fig


def glorot_limit(kernel):
    """Bound of Keras' Glorot-uniform initialiser for a conv kernel (kh, kw, c_in, c_out)."""
    receptive = kernel.shape[0] * kernel.shape[1]
    return float(np.sqrt(6 / (receptive * kernel.shape[2] + receptive * kernel.shape[3])))


def plot_weight_histograms(init, trained):
    """Weights of conv_1, conv_2, conv_3 at initialisation and after training, Glorot bound dashed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, layer in zip(axes, ("conv_1", "conv_2", "conv_3")):
        w0, w1 = conv_kernel(init, layer), conv_kernel(trained, layer)
        lim = glorot_limit(w0)
        span = max(np.abs(w1).max(), lim) * 1.05
        bins = np.linspace(-span, span, 60)
        ax.hist(w0.ravel(), bins=bins, density=True, alpha=0.6, label="initialisation")
        ax.hist(w1.ravel(), bins=bins, density=True, alpha=0.6, label="trained")
        for x in (-lim, lim):
            ax.axvline(x, color="k", ls="--", lw=0.8)
        ax.set(title=f"{layer} ({w0.size:,} weights; Glorot bound ±{lim:.3f})", xlabel="weight", ylabel="density")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _kernels_2d(kernel):
    """conv_1 kernel (3, 3, 1, 32) -> (32, 3, 3)."""
    return kernel[:, :, 0, :].transpose(2, 0, 1)


def run(out, seed=0, data=None, epochs=EPOCHS, train_limit=TRAIN_LIMIT, test_images=None):
    """Train two runs, compare their filters, write figures, numbers and summary.json into `out`.

    Returns
    -------
    dict
        The summary.
    """
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.fileio import save_figure, save_npz, write_json

    run_a = train_run(seed, epochs, train_limit, data, test_images)
    run_b = train_run(seed + 1, epochs, train_limit, data, test_images)
    _, (x_test, _) = load_mnist(data)
    x_test = x_test[:test_images]  # None: all 10,000 (fewer: quick runs such as the tests)
    results = compare_runs(run_a, run_b, to_input(x_test))

    ka, kb = _kernels_2d(conv_kernel(run_a["trained"])), _kernels_2d(conv_kernel(run_b["trained"]))
    for basis in ("kernels", "activations"):
        r = results[f"conv1_{basis}"]
        save_figure(plot_matched_kernels(ka, kb, r["perm"], r["matched"],
                                         f"conv_1 of run A (left) and its Hungarian partner in run B (right), "
                                         f"matched on {basis[:-1]} correlation"),
                    out / f"matched_conv1_{basis}.png")
    save_figure(plot_matched_correlations(results), out / "matched_correlations.png")
    save_figure(plot_before_after(_kernels_2d(conv_kernel(run_a["init"])), ka), out / "conv1_before_after.png")
    save_figure(plot_weight_histograms(run_a["init"], run_a["trained"]), out / "weight_histograms.png")
    arrays = {f"{name}_{key}": r[key] for name, r in results.items() for key in ("perm", "matched")}
    save_npz(out / "two_runs.npz", conv1_a_init=conv_kernel(run_a["init"]), conv1_a=conv_kernel(run_a["trained"]),
             conv1_b=conv_kernel(run_b["trained"]), conv3_a=conv_kernel(run_a["trained"], "conv_3"),
             conv3_b=conv_kernel(run_b["trained"], "conv_3"), **arrays)
    summary = {
        "experiment": "two-runs", "seeds": [seed, seed + 1], "epochs": epochs,
        "train_images": run_a["train_images"], "recipe": "TrainConfig defaults (SGD, momentum 0.9, "
        "one cycle by step with its warm-up, L2 5e-4)", "batch_size": run_a["batch_size"], "lr": run_a["lr"],
        "warmup_epochs": run_a["warmup_epochs"], "precision": resolve("auto"),
        "training_seconds": [round(run_a["seconds"], 1), round(run_b["seconds"], 1)],
        "test_accuracy": [round(run_a["test_accuracy"], 4), round(run_b["test_accuracy"], 4)],
        "conv1_activation_images": min(ACT_IMAGES_CONV1, len(x_test)), "conv3_activation_images": len(x_test),
        "near_identical_threshold": NEAR_IDENTICAL,
        "matchings": {name: {k: v for k, v in r.items() if k not in ("perm", "matched")}
                      for name, r in results.items()},
        "conv1_kernel_vs_activation_matching_agree": int(
            (results["conv1_kernels"]["perm"] == results["conv1_activations"]["perm"]).sum()),
    }
    write_json(out / "summary.json", summary)
    m = summary["matchings"]
    print(f"[two-runs] trained twice ({epochs} epochs on {run_a['train_images']} images: "
          f"{run_a['seconds']:.0f} s + {run_b['seconds']:.0f} s; test accuracy "
          f"{run_a['test_accuracy']:.2%}, {run_b['test_accuracy']:.2%})")
    for name in ("conv1_kernels", "conv1_activations", "conv3_activations"):
        r, c = m[name], m[name + "_chance"]
        print(f"[two-runs] {name}: matched r mean {r['mean']:.2f} (chance {c['mean']:.2f}), "
              f"{r['near_identical']}/{r['filters']} with r >= {NEAR_IDENTICAL}, "
              f"{r['fixed_points']} in the same position")
    return summary
