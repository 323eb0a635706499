"""`make bench`: speed and accuracy numbers, printed and written to bench/results.json.

All of `make bench` is here, in one place with one timing helper (`best_of`): the sections
pipeline (the tf.data wait that `mnist_cnn.pipeline` avoids), profile (one training step,
piece by piece, against a measured matmul rate), train (throughput, the default
training over seeds, the keras-io peer), analyze (feature maps, the whole `analyze` command),
oip (quality and speed of the OIPs), predict (attribution's faithfulness and speed),
experiments, fashion and draw (the explorer's draw page in headless Chromium). They run in
order; `--only train,oip` picks some. Each section is a function that returns a dict of
measurements; the `analysis/` code it measures is imported only when it runs. Results are
merged into the existing results.json, so one section can be re-measured alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mnist_cnn.config import DEFAULT_MODEL, EXPERIMENTS
from mnist_cnn.fileio import write_json
from mnist_cnn.precision import machine_facts, resolve

RESULTS = Path("bench/results.json")
MODEL = Path(DEFAULT_MODEL)  # what the analysis sections measure


def best_of(run, repeats=3, warmup=1, times=None) -> tuple[float, float]:
    """(best seconds of `repeats` calls of `run`, seconds of the first call) after `warmup` calls
    that are timed but not counted (tracing, oneDNN set-up). The one timing loop of `make bench`;
    pass a list as `times` to receive the seconds of every call, warm-up first."""
    times = [] if times is None else times
    for _ in range(warmup + repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times[warmup:]), times[0]


def bench_throughput(images=6_400) -> dict:
    """Seconds per 50,000-image epoch (no validation) in float32 and mixed_bfloat16, measured on
    the first `images` training images, best of 2 after a first pass; the default
    configuration otherwise. bfloat16 is measured on every machine, because where it is emulated
    that is what `auto` protects users from."""
    from dataclasses import replace

    from mnist_cnn.config import TrainConfig
    from mnist_cnn.pipeline import training_dataset
    from mnist_cnn.training import compiled_model, seed_everything, split

    base = TrainConfig()
    (x_fit, y_fit), _, _ = split(base)
    x_fit, y_fit = x_fit[:images], y_fit[:images]
    out = {"measured_on_images": images}
    for precision in ("float32", "mixed_bfloat16"):
        seed_everything(0)
        model = compiled_model(replace(base, precision=precision))
        ds = training_dataset(x_fit, y_fit, base)
        best, first = best_of(lambda: model.fit(ds, epochs=1, verbose=0, shuffle=False), repeats=2)
        per_epoch = best * 50_000 / images
        out[precision] = {"seconds_per_epoch": round(per_epoch, 2),
                          "samples_per_second": round(images / best),
                          "first_pass_seconds": round(first, 2)}
        print(f"[bench] {precision}: {per_epoch:.2f} s per 50,000-image epoch, "
              f"{images / best:.0f} samples/s")
    return out


def keras_io_convnet(data=None, seed=0, epochs=15, limit=None) -> dict:
    """The keras-io "Simple MNIST convnet" recipe, as published, on the same machine: its 2-conv
    model with dropout, Adam, batch 128, 15 epochs, validation_split=0.1 of all 60,000 training
    images, float32, categorical cross-entropy on one-hot labels. The yardstick for our recipe.

    Parameters
    ----------
    data : path of an mnist.npz, optional
    seed : int
    epochs : int
        15 as published; fewer only for tests.
    limit : int, optional
        Train on the first `limit` training images only (tests); None: all, as published.

    Returns
    -------
    dict: recipe, test_accuracy, training_seconds.
    """
    import keras

    from mnist_cnn.data import load_mnist, to_input

    (x_train, y_train), (x_test, y_test) = load_mnist(data)
    x_train, y_train = x_train[:limit], y_train[:limit]
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="keras_io_simple_convnet")
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(to_input(x_train), keras.utils.to_categorical(y_train, 10), batch_size=128,
              epochs=epochs, validation_split=0.1, verbose=0)
    seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(to_input(x_test), keras.utils.to_categorical(y_test, 10),
                                 batch_size=1000, verbose=0)
    print(f"[bench] keras-io simple convnet: test accuracy {accuracy:.4%} in {seconds:.0f} s")
    return {"recipe": "keras-io examples/vision/mnist_convnet.py: Conv32-Pool-Conv64-Pool-"
                      f"Dropout0.5-Dense10, Adam, batch 128, {epochs} epochs, validation_split 0.1, "
                      "float32" + ("" if limit is None else f", first {limit} training images"),
            "test_accuracy": float(accuracy), "training_seconds": round(seconds, 1)}


# Issue 25's goal for the default recipe against the keras-io example in the same run.
GOAL = {"mean_accuracy": 0.995, "each_accuracy": 0.9945, "time_ratio": 0.5}


def training_summary(runs, peer, epoch_flops: int, epochs: int, machine: dict) -> dict:
    """What `make bench` reports of the default training: per seed and over seeds, against the
    peer, with the FLOPs of an epoch, the achieved GFLOP/s and whether issue 25's goal is met.

    Parameters
    ----------
    runs : list of dict
        One per seed: seed, test_accuracy, training_seconds.
    peer : dict
        `keras_io_convnet`'s result.
    epoch_flops : int
        FLOPs of one training epoch (`mnist_cnn.flops.epoch_flops`).
    epochs : int
        Epochs of each run.
    machine : dict
        `machine_facts(policy)`: cpu_model, cpu_flags, policy.

    Returns
    -------
    dict, and its `line` is the one-line report printed.
    """
    acc = np.array([r["test_accuracy"] for r in runs])
    seconds = float(np.mean([r["training_seconds"] for r in runs]))
    ratio = seconds / peer["training_seconds"]
    gflops = epoch_flops * epochs / seconds / 1e9
    goal = {"mean_accuracy": bool(acc.mean() >= GOAL["mean_accuracy"]),
            "each_accuracy": bool(acc.min() >= GOAL["each_accuracy"]),
            "time_ratio": bool(ratio <= GOAL["time_ratio"])}
    cpu = f"{machine['cpu_model']} ({' '.join(machine['cpu_flags']) or 'no AVX-512/AMX flags'})"
    per_seed = ", ".join(f"seed {r['seed']} {r['test_accuracy']:.2%} in {r['training_seconds']:.0f} s"
                         for r in runs)
    line = (f"{cpu}, {machine.get('policy')}: ours {per_seed}; mean {acc.mean():.4%} in "
            f"{seconds:.1f} s; keras-io {peer['test_accuracy']:.4%} in "
            f"{peer['training_seconds']:.1f} s; time ratio {ratio:.3f} (goal <= "
            f"{GOAL['time_ratio']}); an epoch {epoch_flops / 1e12:.3f} TFLOP, {gflops:.0f} GFLOP/s "
            f"achieved; issue 25 goal {'met' if all(goal.values()) else 'not met: ' + ', '.join(k for k, v in goal.items() if not v)}")
    return {"runs": list(runs), "test_accuracy_mean": round(float(acc.mean()), 5),
            "test_accuracy_std": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 5),
            "test_accuracy_min": float(acc.min()), "test_accuracy_max": float(acc.max()),
            "training_seconds_mean": round(seconds, 1), "epoch_flops": int(epoch_flops),
            "gflops_per_second": round(gflops, 1), "time_ratio_to_keras_io": round(ratio, 3),
            "goal": goal, "goal_met": all(goal.values()), "cpu": cpu, "line": line}


def bench_train(seeds: int = 3, overrides=None, peer_options=None, throughput=True) -> dict:
    """Throughput, the default training over seeds, the keras-io peer, the time ratio, FLOPs.

    Parameters
    ----------
    seeds : int
    overrides : dict, optional
        TrainConfig fields to change (tests: a tiny slice); default the recipe as it is.
    peer_options : dict, optional
        Keyword arguments of `keras_io_convnet` (tests: `limit`, `epochs`).
    throughput : bool
        Also measure `bench_throughput` (float32 against mixed_bfloat16).

    Returns
    -------
    dict: policy, machine, throughput, default_training (`training_summary`), keras_io_convnet,
    time_ratio_to_keras_io, beats_keras_io.
    """
    from dataclasses import replace

    from mnist_cnn.config import TrainConfig
    from mnist_cnn.flops import epoch_flops
    from mnist_cnn.model import build_model
    from mnist_cnn.training import train

    config = replace(TrainConfig(), **(overrides or {}))
    policy = resolve(config.precision)
    out = {"policy": policy, "machine": machine_facts(policy)}
    if throughput:
        out["throughput"] = bench_throughput()
    runs = []
    for seed in range(seeds):
        metrics = train(replace(config, seed=seed, out_dir=f"bench/runs/seed-{seed}"), verbose=0)
        runs.append({"seed": seed, "test_accuracy": metrics["test_accuracy"],
                     "training_seconds": metrics["training_seconds"]})
        print(f"[bench] seed {seed}: test accuracy {metrics['test_accuracy']:.4%} in "
              f"{metrics['training_seconds']:.1f} s")
    flops = epoch_flops(build_model(l2=config.l2, dataset=config.dataset), metrics["train_images"])
    peer = keras_io_convnet(**(peer_options or {}))
    summary = training_summary(runs, peer, flops, config.epochs, out["machine"])
    out["default_training"] = {"config": config.to_dict(), **summary}
    out["keras_io_convnet"] = peer
    out["time_ratio_to_keras_io"] = summary["time_ratio_to_keras_io"]
    out["beats_keras_io"] = bool(summary["test_accuracy_mean"] > peer["test_accuracy"]
                                 and summary["training_seconds_mean"] < peer["training_seconds"])
    print(f"[bench] {summary['line']}")
    return out


def _conv_flops(layer, batch) -> int:
    kh, kw, c_in, c_out = layer.kernel.shape
    _, oh, ow, _ = layer.output.shape
    return 2 * kh * kw * c_in * c_out * oh * ow * batch


def bench_profile(seeds: int = 3, batch: int = 64, steps: int = 20, precision=None) -> dict:
    """`make bench` section: where a training step's time goes, piece by piece, on one fixed
    batch of `batch` training images under the resolved `auto` policy.

    Each piece is its own tf.function, run `steps` times per timing (best of 3 after a tracing
    call): the augmentation, the forward pass, forward + backward (loss, L2 and every gradient),
    the optimiser's update alone, the whole step (forward + backward + update), and per layer
    the forward and forward + backward of conv_1, conv_2, conv_3 and the dense part on their own
    inputs. The arithmetic limit beside them is a measured one: the GFLOP/s of a large square
    matrix product (2048, in the same precision), the best these cores do on dense arithmetic.

    Returns
    -------
    dict: per piece ms per step, GFLOP/s where it has a FLOP count (`mnist_cnn.flops` rules),
    and the fraction of the matrix-product rate it reaches; the batch and the policy.
    """
    import keras
    import tensorflow as tf

    from mnist_cnn.config import AUGMENTATION, TrainConfig
    from mnist_cnn.flops import FORWARD_AND_BACKWARD, forward_flops
    from mnist_cnn.pipeline import augment
    from mnist_cnn.training import compiled_model, seed_everything, split

    config = TrainConfig(precision=precision or TrainConfig().precision)
    policy = resolve(config.precision)
    seed_everything(0)
    (x_fit, y_fit), _, _ = split(config)
    x, y = tf.constant(x_fit[:batch]), tf.constant(y_fit[:batch])
    model = compiled_model(config)
    model.optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    weights = model.trainable_variables
    seed = tf.constant([1, 2], dtype=tf.int64)

    def grads(images):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(images, training=True)) + tf.add_n(model.losses)
        return tape.gradient(loss, weights)

    fixed = grads(x)
    # Each piece maps a (perturbed) input to tensors; see the loop below.
    pieces = {
        "augmentation": (x, lambda inp: augment(inp, seed, AUGMENTATION["mnist"])),
        "forward": (x, lambda inp: model(inp, training=True)),
        "forward_backward": (x, grads),
        "optimizer_update": (x, lambda inp: model.optimizer.apply(fixed, weights) or [inp[0, 0]]),
        "whole_step": (x, lambda inp: model.optimizer.apply(grads(inp), weights) or [inp[0, 0]]),
    }
    step_flops = FORWARD_AND_BACKWARD * forward_flops(model) * batch
    flops = {"forward": step_flops // FORWARD_AND_BACKWARD, "forward_backward": step_flops,
             "whole_step": step_flops}

    by_name = {layer.name: layer for layer in model.layers}
    inputs, feed = {}, x
    for layer in model.layers[1:]:
        inputs[layer.name] = feed
        feed = layer(feed)
    dense = keras.Sequential([by_name["dense_1"], by_name["output"]])
    dense_flops = 2 * batch * sum(int(np.prod(by_name[n].kernel.shape)) for n in ("dense_1", "output"))
    for name, layer, inp, n_flops in [
            *((n, by_name[n], inputs[n], _conv_flops(by_name[n], batch))
              for n in ("conv_1", "conv_2", "conv_3")),
            ("dense_1+output", dense, inputs["dense_1"], dense_flops)]:

        def fwd_bwd(inp, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(inp)
                total = tf.reduce_sum(tf.cast(layer(inp), tf.float32))
            return tape.gradient(total, [inp, *layer.trainable_variables])

        pieces[f"{name} forward"] = (inp, lambda inp, layer=layer: layer(inp))
        pieces[f"{name} forward_backward"] = (inp, fwd_bwd)
        flops[f"{name} forward"], flops[f"{name} forward_backward"] = n_flops, 3 * n_flops

    dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32
    square = tf.cast(tf.random.uniform([2048, 2048]), dtype)
    pieces["matmul_2048"] = (square, lambda inp: tf.linalg.matmul(inp, inp))
    flops["matmul_2048"] = 2 * 2048 ** 3

    out = {"batch": batch, "policy": policy, "pieces": {}}
    for name, (start, piece) in pieces.items():
        @tf.function
        def repeated(start=start, piece=piece):
            # `steps` calls in a loop, each input perturbed by the previous result, so that no
            # call can be pruned, merged with another or hoisted out of the loop.
            acc = tf.zeros([], tf.float32)
            for _ in tf.range(steps):
                inp = start + tf.cast(acc * 1e-30, start.dtype)
                result = tf.nest.flatten(piece(inp))
                acc += tf.add_n([tf.cast(tf.reduce_sum(t), tf.float32) for t in result])
            return acc

        best, _ = best_of(lambda: repeated().numpy(), repeats=3)
        ms = best / steps * 1e3
        row = {"ms_per_step": round(ms, 3)}
        if name in flops:
            row["gflops_per_second"] = round(flops[name] / (ms / 1e3) / 1e9, 1)
        out["pieces"][name] = row
    limit = out["pieces"]["matmul_2048"]["gflops_per_second"]
    for name, row in out["pieces"].items():
        if "gflops_per_second" in row:
            row["fraction_of_matmul_rate"] = round(row["gflops_per_second"] / limit, 3)
        print(f"[bench] profile, batch {batch}, {policy}: {name:28s} {row['ms_per_step']:8.3f} ms"
              + (f"  {row['gflops_per_second']:7.1f} GFLOP/s ({row['fraction_of_matmul_rate']:.0%} "
                 f"of the matmul rate)" if "gflops_per_second" in row else ""))
    return out


def bench_pipeline(seeds: int = 3, seconds=3.0, trials=8) -> dict:
    """`make bench` section: why `mnist_cnn.pipeline` switches tf.data's autotuning off.

    The same pipeline (batches of 64 gathered from the 50,000 training images) with autotuning
    on (what Keras builds from NumPy arrays) and off (ours): a new iterator is used for
    `seconds`, then deleted, and the deletion is timed, `trials` times each. With autotuning on,
    some deletions (at random: it is a race in TensorFlow) wait for the autotuner's sleep to
    end; its periods double from 10 ms (ending 2.6 s, 5.1 s, 10.2 s ... after the start), so
    after 3 s of use such a wait is about 2 s. Off, no deletion waits.
    """
    import tensorflow as tf

    from mnist_cnn.config import TrainConfig
    from mnist_cnn.training import split

    (x_fit, _), _, _ = split(TrainConfig())
    images = tf.constant(x_fit)
    out = {"used_for_seconds": seconds}
    for autotune in (True, False):
        options = tf.data.Options()
        options.autotune.enabled = autotune
        ds = (tf.data.Dataset.range(len(x_fit)).repeat().batch(64)
              .map(lambda i: tf.reduce_sum(tf.gather(images, i))).prefetch(2).with_options(options))
        waits = []
        for _ in range(trials):
            iterator, started = iter(ds), time.perf_counter()
            while time.perf_counter() - started < seconds:
                next(iterator)
            started = time.perf_counter()
            del iterator
            waits.append(round(time.perf_counter() - started, 3))
        key = "autotune_on" if autotune else "autotune_off"
        out[key] = {"delete_seconds": waits, "longest_wait": max(waits),
                    "deletions_waiting_over_0_1_s": sum(w > 0.1 for w in waits)}
        print(f"[bench] tf.data autotuning {'on ' if autotune else 'off'}: deleting an iterator "
              f"used for {seconds:.0f} s took {', '.join(f'{w:.2f}' for w in waits)} s")
    return out


def bench_fashion(seeds: int = 3) -> dict:
    """`make bench` section: the Fashion-MNIST default recipe (`TrainConfig(dataset="fashion")`,
    its augmentation `config.AUGMENTATION["fashion"]`) trained once, seed 0, on this machine:
    test accuracy and training seconds, beside the CPU facts."""
    from mnist_cnn.config import AUGMENTATION, TrainConfig
    from mnist_cnn.training import train

    config = TrainConfig(dataset="fashion", seed=0, out_dir="bench/runs/fashion-seed-0")
    metrics = train(config, verbose=0)
    print(f"[bench] fashion, seed 0: test accuracy {metrics['test_accuracy']:.4%} in "
          f"{metrics['training_seconds']:.0f} s")
    return {"config": config.to_dict(), "augmentation": list(AUGMENTATION["fashion"]),
            "policy": resolve(config.precision), "test_accuracy": metrics["test_accuracy"],
            "test_loss": metrics["test_loss"], "per_class_accuracy": metrics["per_class_accuracy"],
            "training_seconds": metrics["training_seconds"],
            "machine": machine_facts(resolve(config.precision))}


def bench_analyze(seeds: int = 3) -> dict:
    """`make bench` section: feature-map extraction speed and the whole analyze command's time.

    Returns
    -------
    dict with extract_10k_seconds (best of 3 after a warm-up; all 10,000 test images through
    every conv/pool layer and dense_1), extract_10k_first_seconds, and analyze_wall_seconds
    (`python -m mnist_cnn analyze --digit 4`, a fresh process, into a temporary folder).
    """
    import os
    import subprocess
    import sys
    import tempfile

    from analysis.feature_maps import FEATURE_LAYERS, FeatureExtractor
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.model import load_trained

    path = ensure_model()
    model = load_trained(path)
    _, (x_test, _) = load_mnist()
    x = to_input(x_test)
    extract = FeatureExtractor(model, FEATURE_LAYERS)
    best, first = best_of(lambda: extract(x), repeats=3)
    print(f"[bench] feature maps of {len(x)} images through {', '.join(FEATURE_LAYERS)}: "
          f"{best:.2f} s (first call {first:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnist_cnn", "analyze", "--digit", "4", "--model",
                        str(path), "--out", str(Path(tmp) / "digit-4")], check=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        inner = json.loads((Path(tmp) / "digit-4" / "summary.json").read_text())
    print(f"[bench] python -m mnist_cnn analyze --digit 4: {wall:.1f} s wall "
          f"(report building {inner['seconds']:.1f} s)")
    return {"extract_10k_seconds": round(best, 3),
            "extract_10k_first_seconds": round(first, 3),
            "analyze_wall_seconds": round(wall, 1), "analyze_report_seconds": inner["seconds"],
            "analyze_section_seconds": inner["section_seconds"]}


def bench_oip(seeds: int = 3) -> dict:
    """`make bench` section: OIP quality on conv_3, and the time for conv_3 and all conv maps.

    Targets: >= 95% of the conv_3 maps active on the test set get an OIP above their largest
    test-image activation; 128 conv_3 maps x 200 steps <= 4 s; all 224 conv maps <= 10 s.
    Times are the best of 3 runs after a first run that includes tracing.
    """
    from dataclasses import replace

    from analysis.oip.ascent import Ascent, OIPConfig, resolve_precision
    from analysis.oip.compute import compute_oips, oip_quality
    from analysis.oip.param import start_images
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.model import load_trained

    model = load_trained(ensure_model())
    _, (x_test, _) = load_mnist()
    x = to_input(x_test)
    config = OIPConfig(steps=200)
    out = {"steps": config.steps, "precision": resolve_precision(config.precision)}
    result = compute_oips(model, "conv_3", None, config, 0, x, verbose=0)
    q = oip_quality(result)
    out["conv_3_quality"] = q
    out["conv_3_first_run_seconds"] = round(result["seconds"], 2)
    print(f"[bench] conv_3 OIPs above data max: {q['above_data_max']}/{q['active_on_data']} "
          f"active maps ({q['fraction_above_data_max']:.1%}, target >= 95%); "
          f"{q['dead_on_data']} dead on the test set; zero at end {q['zero_at_end']}")
    layer_seconds = {}
    for layer in ("conv_1", "conv_2", "conv_3"):
        ascent = Ascent(model, layer, config=config)
        maps = np.arange(ascent.channels)
        start = start_images(maps, 0, config.start_mean, config.start_std)
        times = []  # the first run traces
        best, _ = best_of(lambda: ascent.run(start, maps, verbose=0), repeats=3, times=times)
        layer_seconds[layer] = round(best, 2)
        print(f"[bench] {layer}: {len(maps)} maps x {config.steps} steps in {best:.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times[1:])})")
    if out["precision"] != "float32":  # what the bfloat16 default saves
        ascent = Ascent(model, "conv_3", config=replace(config, precision="float32"))
        maps = np.arange(ascent.channels)
        start = start_images(maps, 0, config.start_mean, config.start_std)
        best, _ = best_of(lambda: ascent.run(start, maps, verbose=0), repeats=1)
        out["conv_3_float32_seconds"] = round(best, 2)
        print(f"[bench] conv_3 in float32 instead: {out['conv_3_float32_seconds']:.2f} s")
    out["seconds_per_layer"] = layer_seconds
    out["conv_3_seconds"] = layer_seconds["conv_3"]
    out["all_conv_seconds"] = round(sum(layer_seconds.values()), 2)
    out["targets_met"] = {"quality_95": q["fraction_above_data_max"] >= 0.95,
                          "conv_3_4s": layer_seconds["conv_3"] <= 4.0,
                          "all_conv_10s": out["all_conv_seconds"] <= 10.0}
    print(f"[bench] conv_3 {out['conv_3_seconds']} s (target <= 4), all 224 conv maps "
          f"{out['all_conv_seconds']} s (target <= 10), {out['precision']}")
    return out


def bench_experiments(seeds: int = 3):
    """`make bench` section: seconds and key numbers of each experiment (output in a temporary folder)."""
    import tempfile

    from analysis.experiments import run_one

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-experiments-") as out:
        for name in EXPERIMENTS:
            s = run_one(name, out, seed=0)
            results[name] = {"seconds": s["seconds"], **{k: s[k] for k in KEY_NUMBERS[name]}}
    return results


def bench_draw(seeds: int = 3) -> dict:
    """`make bench` section: the explorer's draw page in headless Chromium on the default model
    (`analysis.explore.draw.measure`): one forward pass (target <= 20 ms, so drawing stays
    fluid), one occlusion map (target <= 1 s), medians over 10 test images."""
    from analysis.explore.draw import measure
    from mnist_cnn.data import load_mnist
    from mnist_cnn.model import load_trained

    _, (x_test, y_test) = load_mnist()
    result = measure(load_trained(ensure_model()), x_test, y_test)
    print("[bench] draw page: " + (f"skipped, {result['skipped']}" if "skipped" in result else
          f"forward pass {result['forward_ms_median']} ms (target <= 20), occlusion map "
          f"{result['occlusion_ms_median']} ms (target <= 1000), redrawing every grid "
          f"{result['render_ms_median']} ms ({result['browser']})"))
    return result


KEY_NUMBERS = {
    "single-image": ("mean_abs_r_before", "mean_abs_r_after", "r_after"),
    "lines": ("test_accuracy", "horizontal_detectors", "vertical_detectors", "mean_best_r_init",
              "mean_best_r_trained"),
    "reference": ("max_abs_diff_forward", "max_abs_diff_input_gradient", "measured_equals_predicted"),
    "two-runs": ("training_seconds", "test_accuracy", "matchings"),
}


def bench_predict(seeds: int = 3) -> dict:
    """`make bench` section: attribution's numbers on the default model (issue #20): IG
    completeness on 100 test images, deletion/insertion against random and Sobel orders on 500,
    the randomisation check on 50, 1,000 images in one batch call, and `mnist_cnn predict` on
    one image in a fresh process (first run for the model, then warm caches)."""
    from analysis.attribution.benchmark import attribution_numbers, predict_wall
    from mnist_cnn.data import load_mnist, to_input
    from mnist_cnn.model import load_trained

    path = ensure_model()
    _, (x_test, y_test) = load_mnist()
    out = attribution_numbers(load_trained(path), to_input(x_test), y_test)
    out["predict_wall_seconds"] = predict_wall(path, x_test[0])
    best = out["best_against_random_deletion"]
    print(f"[bench] attribution of {out['timing_images']} images, every method: "
          f"{out['attribution_1000_seconds']:.1f} s; IG complete within 1% on "
          f"{out['completeness']['within_1_percent']:.0%} of 100; {best['method']} beats random "
          f"deletion on {best['fraction']:.1%} of 500; predict one image "
          f"{out['predict_wall_seconds']} s wall (first, then warm)")
    return out


# name -> function; each takes the number of training seeds and returns a dict. The order is the order of a
# full `make bench`.
SECTIONS = {"pipeline": bench_pipeline, "profile": bench_profile, "train": bench_train, "analyze": bench_analyze,
            "oip": bench_oip, "predict": bench_predict, "experiments": bench_experiments,
            "fashion": bench_fashion, "draw": bench_draw}


def ensure_model():
    """The analysis sections measure the default model; train it first if it is missing."""
    if not MODEL.is_file():
        from mnist_cnn.config import TrainConfig
        from mnist_cnn.training import train

        train(TrainConfig(), verbose=0)
    return MODEL


def chosen_sections(names=None) -> list:
    """The sections to run, in the order given (default all); UserError for an unknown one."""
    chosen = list(names or SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        from mnist_cnn.errors import UserError
        raise UserError(f"unknown bench section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    return chosen


def run_bench(sections=None, seeds: int = 3):
    """Run the chosen sections (default all), print their numbers and merge them into
    bench/results.json."""
    chosen = chosen_sections(sections)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["machine"] = machine_facts(resolve("auto"))
    for name in chosen:
        started = time.perf_counter()
        results[name] = SECTIONS[name](seeds)
        results[name]["section_seconds"] = round(time.perf_counter() - started, 1)
        write_json(RESULTS, results)  # after every section, so a long run keeps what it measured
    print(json.dumps({k: results[k] for k in chosen}, indent=2))
    print(f"wrote {RESULTS}")
