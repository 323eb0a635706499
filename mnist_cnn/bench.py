"""`make bench`: speed and accuracy numbers, printed and written to bench/results.json.

Sections run in order; `--only train,oip` picks some. Each section is a function that returns a
dict of measurements; sections living in `analysis/` are imported only when they run. Results
are merged into the existing results.json, so one section can be re-measured alone.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from mnist_cnn.fileio import write_json

RESULTS = Path("bench/results.json")
MODEL = Path("models/mnist_cnn.keras")


def bench_train(args) -> dict:
    """Seconds per epoch and samples/s for float32 and mixed_bfloat16; accuracy over seeds."""
    from dataclasses import replace

    from mnist_cnn.config import TrainConfig
    from mnist_cnn.train import compiled_model, seed_everything, split, train, training_dataset

    out = {}
    base = TrainConfig()
    (x_fit, y_fit), _, _ = split(base)
    for precision in ("float32", "mixed_bfloat16"):
        seed_everything(0)
        model = compiled_model(replace(base, precision=precision))
        ds = training_dataset(x_fit, y_fit, base)
        times = []
        for _ in range(3):  # the first epoch includes tracing; report the best of the rest
            t = time.perf_counter()
            model.fit(ds, epochs=1, verbose=0, shuffle=False)
            times.append(time.perf_counter() - t)
        best = min(times[1:])
        out[precision] = {"seconds_per_epoch": round(best, 2),
                          "samples_per_second": round(len(x_fit) / best),
                          "first_epoch_seconds": round(times[0], 2)}
        print(f"[bench] {precision}: {best:.2f} s/epoch, {len(x_fit) / best:.0f} samples/s")

    runs = []
    for seed in range(args.seeds):
        config = TrainConfig(seed=seed, out_dir=f"bench/runs/seed-{seed}")
        metrics = train(config, verbose=0)
        history = json.loads((Path(config.out_dir) / "history.json").read_text())
        epoch_99 = next((i for i, a in enumerate(history["val_accuracy"]) if a >= 0.99), None)
        per_epoch = metrics["training_seconds"] / config.epochs
        runs.append({"seed": seed, "test_accuracy": metrics["test_accuracy"],
                     "training_seconds": metrics["training_seconds"],
                     "seconds_to_val_99": None if epoch_99 is None else round(per_epoch * (epoch_99 + 1), 1),
                     "epochs_to_val_99": None if epoch_99 is None else epoch_99 + 1})
        print(f"[bench] seed {seed}: test accuracy {metrics['test_accuracy']:.4%} in "
              f"{metrics['training_seconds']:.0f} s")
    acc = np.array([r["test_accuracy"] for r in runs])
    out["default_training"] = {
        "config": TrainConfig().to_dict(), "runs": runs,
        "test_accuracy_mean": round(float(acc.mean()), 5),
        "test_accuracy_std": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 5),
        "test_accuracy_min": float(acc.min()), "test_accuracy_max": float(acc.max()),
        "training_seconds_mean": round(float(np.mean([r["training_seconds"] for r in runs])), 1),
    }
    return out


# name -> (module, function); each function takes the parsed args and returns a dict.
SECTIONS = {
    "train": ("mnist_cnn.bench", "bench_train"),
    "analyze": ("analysis.report", "bench_analyze"),
    "oip": ("analysis.oip", "bench_oip"),
    "experiments": ("analysis.experiments", "bench_experiments"),
}


def ensure_model():
    """The analysis sections measure the default model; train it first if it is missing."""
    if not MODEL.is_file():
        from mnist_cnn.config import TrainConfig
        from mnist_cnn.train import train

        train(TrainConfig(), verbose=0)
    return MODEL


def run_bench(args):
    """Run the chosen sections, print their numbers and merge them into bench/results.json."""
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        from mnist_cnn.errors import UserError
        raise UserError(f"unknown bench section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor(),
                          "platform": platform.platform()}
    for name in chosen:
        module, function = SECTIONS[name]
        started = time.perf_counter()
        results[name] = getattr(importlib.import_module(module), function)(args)
        results[name]["section_seconds"] = round(time.perf_counter() - started, 1)
        write_json(RESULTS, results)  # after every section, so a long run keeps what it measured
    print(json.dumps({k: results[k] for k in chosen}, indent=2))
    print(f"wrote {RESULTS}")
