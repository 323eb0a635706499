"""`python -m mnist_cnn experiment NAME|all`: the filter-learning experiments, one module each.

single-image (analysis.single_image), lines (analysis.lines), reference (analysis.reference_check)
and two-runs (analysis.two_runs). Each writes `<out>/<name>/` (PNGs, an .npz of the numbers,
summary.json) atomically: the folder appears complete or not at all. `bench_experiments` times
them for `make bench`.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

# CLI name -> module; the order is the order of `all` (cheap first).
MODULES = {
    "single-image": "analysis.single_image",
    "lines": "analysis.lines",
    "reference": "analysis.reference_check",
    "two-runs": "analysis.two_runs",
}


def run_one(name, out_root, seed=0, data=None, **sizes):
    """Run one experiment into `out_root/name` atomically.

    Parameters
    ----------
    name : str
        A key of MODULES.
    out_root : str or Path
    seed : int
    data : str, optional
        Explicit Keras-style mnist.npz.
    **sizes
        Passed to the module's `run` (tests use them to shrink the work).

    Returns
    -------
    dict
        The experiment's summary plus `seconds`.
    """
    from mnist_cnn.fileio import atomic_dir, write_json

    module = importlib.import_module(MODULES[name])
    started = time.perf_counter()
    with atomic_dir(Path(out_root) / name) as tmp:
        summary = module.run(tmp, seed=seed, data=data or None, **sizes)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        write_json(tmp / "summary.json", summary)  # again, now with the time it took
    print(f"[{name}] {summary['seconds']:.1f} s -> {Path(out_root) / name}")
    return summary


def run_experiments(args):
    """CLI entry: args.name (an experiment or 'all'), args.seed, args.out, args.data."""
    names = list(MODULES) if args.name == "all" else [args.name]
    started = time.perf_counter()
    for name in names:
        run_one(name, args.out, args.seed, args.data)
    if len(names) > 1:
        print(f"all experiments: {time.perf_counter() - started:.0f} s")
    return 0


def bench_experiments(args):
    """`make bench` section: seconds and key numbers of each experiment (output in a temporary folder)."""
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-experiments-") as out:
        for name in MODULES:
            s = run_one(name, out, seed=0)
            results[name] = {"seconds": s["seconds"], **{k: s[k] for k in KEY_NUMBERS[name]}}
    return results


KEY_NUMBERS = {
    "single-image": ("mean_abs_r_before", "mean_abs_r_after", "r_after"),
    "lines": ("test_accuracy", "horizontal_detectors", "vertical_detectors", "mean_best_r_init",
              "mean_best_r_trained"),
    "reference": ("max_abs_diff_forward", "max_abs_diff_input_gradient", "measured_equals_predicted"),
    "two-runs": ("training_seconds", "test_accuracy", "matchings"),
}
