"""The training sections of `make bench` (`mnist_cnn.bench` runs them): throughput per
precision, the default recipe over seeds against the keras-io example with the goal of issue 25
(`training_summary`), and one training step timed piece by piece (`bench_profile`); and the
timing helper every section uses (`best_of`)."""

from __future__ import annotations

import time

import numpy as np

from mnist_cnn.precision import machine_facts, resolve

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


def bench_profile(seeds: int = 3, batch: int | None = None, steps: int = 20, precision=None) -> dict:
    """`make bench` section: where a training step's time goes, piece by piece, on one fixed
    batch of `batch` training images (default the recipe's batch) under the resolved `auto`
    policy.

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
    from mnist_cnn.flops import FORWARD_AND_BACKWARD, forward_flops, layer_flops
    from mnist_cnn.pipeline import augment
    from mnist_cnn.training import compiled_model, seed_everything, split

    config = TrainConfig(precision=precision or TrainConfig().precision)
    batch = batch or config.batch_size
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
    dense_flops = batch * sum(layer_flops(by_name[n]) for n in ("dense_1", "output"))
    for name, layer, inp, n_flops in [
            *((n, by_name[n], inputs[n], batch * layer_flops(by_name[n]))
              for n in ("conv_1", "conv_2", "conv_3")),
            ("dense_1+output", dense, inputs["dense_1"], dense_flops)]:

        def fwd_bwd(inp, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(inp)
                total = tf.reduce_sum(tf.cast(layer(inp), tf.float32))
            return tape.gradient(total, [inp, *layer.trainable_variables])

        pieces[f"{name} forward"] = (inp, lambda inp, layer=layer: layer(inp))
        pieces[f"{name} forward_backward"] = (inp, fwd_bwd)
        flops[f"{name} forward"] = n_flops
        flops[f"{name} forward_backward"] = FORWARD_AND_BACKWARD * n_flops

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
