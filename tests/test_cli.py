"""Command-line errors: one line on stderr, exit status 2, no traceback, no TensorFlow import."""

import subprocess

import pytest

BAD_ARGUMENTS = [
    (["train", "--epochs", "-1"], "--epochs: must be > 0"),
    (["train", "--batch-size", "abc"], "--batch-size: expected an integer, got 'abc'"),
    (["train", "--lr", "0"], "--lr: must be > 0"),
    (["train", "--momentum", "1.5"], "--momentum: must be in [0, 1)"),
    (["train", "--precision", "float16"], "--precision: invalid choice"),
    (["train", "--epoch", "3", "--bogus"], "unrecognized arguments"),
    (["train", "--data", "/nonexistent/mnist.npz"], "does not exist"),
    (["evaluate", "--model", "/nonexistent/m.keras"], "no model at /nonexistent/m.keras"),
    (["concepts", "--images", "50"], "--images must be at least 100"),
    (["concepts", "--permutations", "5"], "--permutations must be at least 20"),
    (["concepts", "--seeds", "0"], "--seeds: must be > 0, got 0"),
    (["concepts", "--model", "/nonexistent/m.keras"], "no model at /nonexistent/m.keras"),
]


@pytest.fixture(scope="module")
def bad_argument_results(cli_batch):
    return cli_batch([args for args, _ in BAD_ARGUMENTS])


@pytest.mark.parametrize("case", range(len(BAD_ARGUMENTS)),
                         ids=[" ".join(args) for args, _ in BAD_ARGUMENTS])
def test_bad_arguments(case, bad_argument_results):
    expected, result = BAD_ARGUMENTS[case][1], bad_argument_results[case]
    assert result["rc"] == 2
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert not result["tensorflow"]


def test_make_variables_are_checked(tmp_path):
    result = subprocess.run(["make", "--no-print-directory", "train", "EPOCHS=-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "mnist_cnn train: error: argument --epochs: must be > 0, got -1" in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_data_file_after_tensorflow_is_still_one_line(tmp_path, capsys):
    """A file that passes the early checks (it exists) but fails to load inside training."""
    from mnist_cnn.cli import main

    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    rc = main(["train", "--epochs", "1", "--data", str(bad), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines() == [f"mnist_cnn train: error: MNIST file {bad} is corrupt or truncated "
                                "(BadZipFile); delete it or point --data at a good copy"], err
    assert not (tmp_path / "out" / "mnist_cnn.keras").exists()


def test_evaluate_prints_accuracy_and_confusion_matrix(tiny_run, capsys):
    """`evaluate` reports an accuracy that agrees with its own confusion matrix and, within a few
    images, with the one training reported (the two may run different numeric paths: training
    under the resolved policy, evaluation always in float32)."""
    import re

    import numpy as np

    from mnist_cnn.cli import main

    config, metrics = tiny_run
    assert main(["evaluate", "--model", config.model_path]) == 0
    out = capsys.readouterr().out
    accuracy, correct, total = re.search(r"test accuracy ([\d.]+)% \((\d+)/(\d+)\)", out).groups()
    rows = [line.split()[1:] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 10 and all(len(r) == 10 for r in rows)  # one row per true digit
    cm = np.array(rows, dtype=int)
    assert cm.sum() == int(total) == 10000 and np.trace(cm) == int(correct)
    assert float(accuracy) == pytest.approx(100 * int(correct) / int(total), abs=5e-5)
    assert abs(int(correct) - round(metrics["test_accuracy"] * 10000)) <= 10
