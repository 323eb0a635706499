"""Shared fixtures: MNIST (loaded once) and a small, briefly trained model (trained once), and a
tiny Fashion-MNIST model (`tiny_fashion_run`).

The tiny model is the real architecture trained for 2 epochs on 6000 images (a few seconds),
good enough (~96% test accuracy) that analyses on it behave like on the full model. It trains in
float32 on every machine: bfloat16 is emulated (several times slower) where the CPU lacks it.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `auto` precision by the flag rule in every test and subprocess: no timing of this machine
# (and nothing written to the user's cache); tests/test_precision.py fakes the timings instead.
os.environ["MNIST_CNN_AUTO_PRECISION"] = "flags"


def _share_of_the_cores() -> int:
    """Threads per pool (TensorFlow's, BLAS's) per pytest-xdist worker: the cores divided among
    the workers.

    By default every worker's TensorFlow sizes its thread pools to all the cores, so two workers
    on 2 cores run 4 busy threads, which wait on each other: `make test` took 114-128 s and
    ~235 s of CPU; with one thread each, 106-114 s and ~205 s (AMD EPYC, 2 cores, same code,
    runs alternated). Subprocesses that tests start inherit the setting.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (cores or 1) // workers)


# The same share for NumPy's and scikit-learn's BLAS and OpenMP pools: OpenBLAS sizes its pool to
# all the cores too, and its threads spin while they wait, so two workers' pools on 2 cores fought
# for them. A 300 x 300 `numpy.linalg.eigh` (the TCAV section runs dozens) took 0.34 s of CPU
# with the default pool and 0.015 s with one thread; the report fixture 58 -> 23 s of CPU (Intel
# Xeon with AMX, 2 cores shared with a training, 2026-12-03).
_POOLS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS",
          "OMP_NUM_THREADS", "MKL_NUM_THREADS")

if "PYTEST_XDIST_WORKER" in os.environ:  # set by xdist in its workers, before TF is imported
    for pool in _POOLS:
        os.environ.setdefault(pool, str(_share_of_the_cores()))
    if "numpy" in sys.modules:  # a plugin imported NumPy first: its pools no longer read the env
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]))

import pytest  # noqa: E402

# Tests that share a trained session fixture run in one xdist worker, so each fixture is built
# once; the rest are spread over the workers (`make test` runs `pytest -n 2 --dist loadgroup`).
# No test may use fixtures of both groups (it would form a third group and train both again).
SHARED_TRAININGS = {
    "tiny_mnist": {"tiny_run", "tiny_model_path", "tiny_model", "explorer_site"},
    "tiny_fashion": {"tiny_fashion_run", "tiny_fashion_model_path"},
    "own_models": {"own_models"},  # tests/test_own_model.py: two other architectures
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        for group, fixtures in SHARED_TRAININGS.items():
            if fixtures & set(getattr(item, "fixturenames", ())):
                item.add_marker(pytest.mark.xdist_group(group))
    # xdist hands out the groups first, then single tests in this order: the heavy ones first,
    # so that no 10-20 s test starts last while the other worker is idle.
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(scope="session")
def mnist():
    from mnist_cnn.data import load_mnist

    return load_mnist()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist):
    """(config, metrics) of a short training run; the model is at config.model_path."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.training import train

    out = tmp_path_factory.mktemp("tiny_model")
    config = TrainConfig(epochs=2, train_limit=6000, batch_size=32, lr=0.05, lr_final=0.3,
                         warmup_epochs=0, augment=False, val_size=2000, precision="float32",
                         steps_per_execution=1, out_dir=str(out))  # 1: ~1 s less tracing
    return config, train(config, verbose=0)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_run):
    return tiny_run[0].model_path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    """The tiny model loaded as analysis code loads it (float32, safe mode)."""
    from mnist_cnn.model import load_trained

    return load_trained(tiny_model_path)


@pytest.fixture(scope="session")
def tiny_fashion_run(tmp_path_factory):
    """(config, metrics) of a tiny Fashion-MNIST run: 1 epoch on 2000 images, float32, with the
    fashion augmentation (a few seconds). Good enough to test names, paths and refusals, not
    accuracy."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.training import train

    out = tmp_path_factory.mktemp("tiny_fashion_model")
    config = TrainConfig(dataset="fashion", epochs=1, train_limit=2000, batch_size=32, lr=0.05,
                         lr_final=0.3, warmup_epochs=0, augment=True, val_size=1000,
                         precision="float32", steps_per_execution=1, out_dir=str(out))
    return config, train(config, verbose=0)


@pytest.fixture(scope="session")
def tiny_fashion_model_path(tiny_fashion_run):
    return tiny_fashion_run[0].model_path


@pytest.fixture
def run_main(capsys):
    """`run_main(argv) -> (exit status, stderr lines)`: `mnist_cnn.cli.main` in this process."""
    from mnist_cnn.cli import main

    def run(argv):
        rc = main(argv)
        return rc, capsys.readouterr().err.strip().splitlines()

    return run


@pytest.fixture
def first_test_images(monkeypatch):
    """Commands and trainings in this test load only the first 2000 test images of either data
    set: enough for paths, names, wording and determinism; the full 10,000 only cost time."""
    from mnist_cnn import data, training

    load_dataset = data.load_dataset

    def first_2000(*args, **kwargs):
        fit, (x_test, y_test) = load_dataset(*args, **kwargs)
        return fit, (x_test[:2000], y_test[:2000])

    monkeypatch.setattr(data, "load_dataset", first_2000)
    monkeypatch.setattr(training, "load_dataset", first_2000)  # imported by name there


@pytest.fixture(scope="session")
def untrained_mnist_model_path(tmp_path_factory):
    """An untrained MNIST model file: enough where only the model's data set matters (it is in
    the file, as the Keras model's name), at no training cost."""
    from mnist_cnn.model import build_model

    path = tmp_path_factory.mktemp("untrained_mnist") / "mnist_cnn.keras"
    build_model(dataset="mnist").save(path)
    return str(path)


@pytest.fixture(scope="session")
def explorer_site(tmp_path_factory, tiny_model_path):
    """The explorer site of the tiny model, built once through the command line (first 1000
    test images, 2 short OIPs per unit); shared by tests/test_explore*.py."""
    from mnist_cnn.cli import main

    out = tmp_path_factory.mktemp("explorer") / "site"
    rc = main(["explore", "--model", str(tiny_model_path), "--out", str(out), "--limit", "1000",
               "--steps", "10", "--starts", "2", "--precision", "float32"])
    assert rc == 0
    return out


# Runs `mnist_cnn.cli.main` on many argument lists in one fresh Python (no TensorFlow imported
# by the test process leaks in), recording for each: exit status, stdout, stderr, and whether
# TensorFlow had been imported by then. One interpreter for all cases instead of one per case.
_CLI_BATCH = """
import contextlib, io, json, sys
from mnist_cnn.cli import main
results = []
for args in json.loads(sys.stdin.read()):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(args)
        except SystemExit as e:  # argparse's own errors
            rc = e.code
    results.append({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "tensorflow": "tensorflow" in sys.modules})
print(json.dumps(results))
"""


@pytest.fixture(scope="session")
def cli_batch():
    """`run(list of argv lists, cwd=None) -> list of dicts` (rc, stdout, stderr, tensorflow)."""
    import json
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[1])

    def run(cases, cwd=None):
        """`cwd` (default: the project) is where relative default paths (models/...) resolve."""
        env = {**os.environ, "PYTHONPATH": root}
        done = subprocess.run([sys.executable, "-c", _CLI_BATCH], input=json.dumps(cases),
                              capture_output=True, text=True, timeout=120, cwd=cwd or root,
                              env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    return run
