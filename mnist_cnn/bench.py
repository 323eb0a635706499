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

# The training sections live beside this module; their names are also this module's.
from mnist_cnn.bench_train import (GOAL, bench_profile, bench_throughput, bench_train,  # noqa: F401
                                   best_of, keras_io_convnet, training_summary)
from mnist_cnn.config import DEFAULT_MODEL, EXPERIMENTS
from mnist_cnn.fileio import write_json
from mnist_cnn.precision import machine_facts, resolve

RESULTS = Path("bench/results.json")
MODEL = Path(DEFAULT_MODEL)  # what the analysis sections measure


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
