"""`python -m mnist_cnn experiment NAME|all`: the filter-learning experiments, one module each.

The names, in the order of `all`, are `mnist_cnn.config.EXPERIMENTS` (the command line reads
them there without importing this package); `MODULES` maps each to its module here:
single-image (`single_image`), lines (`lines`), reference (`reference`: it checks the
NumPy reference `mnist_cnn/numpy_reference.py` against Keras) and two-runs (`two_runs`); `filters`
holds what they share. Each module has `run(out, seed, data, **sizes)`, which writes
`<out>/<name>/` (PNGs, an .npz of the numbers, summary.json); `run_one` makes that atomic: the
folder appears complete or not at all. `mnist_cnn.bench.bench_experiments` times them.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from mnist_cnn.config import EXPERIMENTS

# Experiment name -> module: the name with "_" for "-".
MODULES = {name: f"{__name__}.{name.replace('-', '_')}"
           for name in EXPERIMENTS}


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
        Passed to the module's `run` (tests use them to shrink the work, or to point the
        reference experiment at another model).

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
