"""Nothing lost under faults: a diverging run, a full or read-only disk, a damaged checkpoint.

Each fault is made real where the machine allows it: a small tmpfs (full) or a tmpfs remounted
read-only, mounted by the test when it runs as root with mount rights; elsewhere the lowest write
function raises the OSError that such a file system would (ENOSPC, EROFS). Each test checks the
exit status, one line on stderr without a traceback, and that the earlier files are
byte-identical afterwards.
"""

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mnist_cnn.fileio import WriteError, atomic_dir, atomic_group, sha256_file, write_bytes

# One epoch of 4 steps, no validation (every 2nd epoch), one step per call (less tracing).
TINY = ["--epochs", "1", "--train-limit", "128", "--batch-size", "32", "--val-size", "64",
        "--precision", "float32", "--no-augment", "--warmup-epochs", "0",
        "--steps-per-execution", "1"]


def tree(folder) -> dict:
    """Relative path -> SHA-256 of every file under `folder` (folders as None)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): sha256_file(p) if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def previous_run(folder, model_path) -> dict:
    """An output folder as an earlier training left it; returns its tree."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, folder / "mnist_cnn.keras")
    for name in ("metrics.json", "history.json"):
        (folder / name).write_text(json.dumps({"from": "the earlier run"}))
    for name in ("confusion_matrix.png", "learning_curves.png"):
        (folder / name).write_bytes(b"\x89PNG earlier figure")
    (folder / "logs" / "earlier" / "train").mkdir(parents=True)
    (folder / "logs" / "earlier" / "train" / "events.out.tfevents.1").write_bytes(b"events")
    (folder / ".lock").touch()
    return tree(folder)


def one_line(lines, *expected):
    assert len(lines) == 1 and all(e in lines[0] for e in expected), lines
    assert "Traceback" not in lines[0]
    return lines[0]


def _mount(folder, size):
    """Mount a tmpfs of `size` at `folder`; False where this process may not."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_fs(tmp_path):
    """`small_fs(size) -> folder` on its own tmpfs, or None (the test injects the fault)."""
    mounted = []

    def make(size="1m"):
        folder = tmp_path / f"fs{len(mounted)}"
        if not _mount(folder, size):
            return None
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder, leave):
    """Fill `folder`'s file system until `leave` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as f:
        f.write(bytes(max(free - leave, 0)))


def fail_big_writes(monkeypatch):
    """Where no tmpfs can be mounted: writes of 1000 bytes or more fail as on a full disk."""
    real = Path.write_bytes

    def write_bytes(self, data):
        if len(data) >= 1000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def read_only(folder, small_fs, monkeypatch):
    """Make `folder` (with what it holds) read-only: a tmpfs remounted ro, or EROFS injected
    into every temporary file or folder created under it."""
    ro = small_fs("4m")
    if ro is not None:
        for p in folder.iterdir():
            shutil.move(str(p), ro / p.name)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        return ro
    import tempfile

    for name in ("mkstemp", "mkdtemp"):
        real = getattr(tempfile, name)

        def refuse(*args, _real=real, **kwargs):
            where = Path(kwargs.get("dir") or ".").absolute()
            if where == folder.absolute() or folder.absolute() in where.parents:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(where))
            return _real(*args, **kwargs)
        monkeypatch.setattr(tempfile, name, refuse)
    return folder


# 1. A diverging run


def test_diverging_run_stops_and_leaves_the_previous_model(tmp_path, untrained_mnist_model_path,
                                                           run_main):
    out = tmp_path / "models"
    before = previous_run(out, untrained_mnist_model_path)
    rc, err = run_main(["train", *TINY, "--epochs", "2", "--lr", "40", "--momentum", "0.99",
                        "--out-dir", str(out)])
    assert rc == 2
    one_line(err, "training diverged at epoch ", "(loss ", "nothing saved", "--lr (now 40)")
    assert tree(out) == before  # model, metrics, figures, logs: byte-identical; no backup/


def test_the_guard_stops_on_a_loss_that_is_not_finite_or_explodes():
    import math

    import keras

    from mnist_cnn.faults import Diverged, DivergenceGuard, explosion_limit

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    limit = explosion_limit(model)
    assert limit == pytest.approx(100 * math.log(10))  # from the model's 10 classes
    guard = DivergenceGuard(limit)
    guard.set_params({"steps": 47})
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"loss": 16.1})  # the worst a clipped cross-entropy gives
    for loss in (float("nan"), float("inf"), 2 * limit):
        with pytest.raises(Diverged) as caught:
            guard.on_train_batch_end(5, {"loss": loss})
        assert (caught.value.epoch, caught.value.step, caught.value.steps) == (2, 5, 47)


# 2. A full disk


def test_full_disk_keeps_the_previous_files_together(small_fs, tmp_path, monkeypatch):
    """A set of files written together (`atomic_group`, as training writes its artefacts): the
    disk fills up at the third, and the first two are not replaced either."""
    folder = small_fs("256k") or tmp_path
    for name in ("a.json", "b.json", "big.bin"):
        (folder / name).write_text("old " + name)
    if folder == tmp_path:  # no tmpfs: the write of the big file fails as on a full disk
        fail_big_writes(monkeypatch)
    else:
        fill(folder, leave=64 * 1024)
    before = tree(folder)
    with pytest.raises(WriteError, match=f"cannot write {folder}/big.bin: No space left on device"):
        with atomic_group() as stage:
            stage(folder / "a.json").write_bytes(b"new a")
            stage(folder / "b.json").write_bytes(b"new b")
            stage(folder / "big.bin").write_bytes(bytes(1 << 20))
    assert tree(folder) == before  # nothing replaced, no temporary file left


def test_full_disk_in_a_replaced_folder_names_the_final_path(small_fs, tmp_path, monkeypatch):
    """`atomic_dir` (analyze, explore, experiment): the error names the file under the final
    folder, not the temporary one; the earlier folder is untouched and the temporary removed."""
    root = small_fs("256k") or tmp_path
    (root / "report").mkdir()
    (root / "report" / "index.html").write_text("earlier report")
    if root == tmp_path:
        fail_big_writes(monkeypatch)
    else:
        fill(root, leave=64 * 1024)
    before = tree(root)
    with pytest.raises(WriteError) as caught:
        with atomic_dir(root / "report") as tmp:
            write_bytes(tmp / "index.html", b"new")
            write_bytes(tmp / "maps.png", bytes(1 << 20))
    assert str(caught.value) == (f"cannot write {root}/report/maps.png: No space left on device; "
                                 "free some space or write elsewhere")
    assert tree(root) == before


def test_oip_on_a_full_disk_is_one_line(small_fs, tmp_path, monkeypatch, untrained_mnist_model_path,
                                        first_test_images, run_main):
    """A real command (`oip`, the cheapest that writes) whose figure does not fit after its
    arrays did: one line, and neither earlier file replaced (they are written as a group)."""
    root = small_fs("1m") or tmp_path
    out = root / "oip"
    out.mkdir()
    (out / "conv_1.npz").write_bytes(b"earlier arrays")
    (out / "conv_1.png").write_bytes(b"earlier figure")
    if root == tmp_path:
        import matplotlib.image
        from matplotlib.figure import Figure

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(Figure, "savefig", full)  # fileio.save_figure writes with either
        monkeypatch.setattr(matplotlib.image, "imsave", full)
    else:  # 12 kB: the early check's 4 kB and one map's arrays (~4 kB) fit, its figure (~14) not
        fill(root, leave=12 * 1024)
    before = tree(root)
    rc, err = run_main(["oip", "--layer", "conv_1", "--maps", "0", "--steps", "2",
                        "--model", untrained_mnist_model_path, "--out", str(out)])
    assert rc == 2
    one_line(err, f"cannot write {out}/conv_1.png: No space left on device")
    assert tree(root) == before


def test_training_checks_the_space_before_it_trains(small_fs, tmp_path, monkeypatch,
                                                    untrained_mnist_model_path, run_main):
    root = small_fs("2m")
    if root is None:
        import shutil as sh

        monkeypatch.setattr(sh, "disk_usage", lambda p: sh._ntuple_diskusage(1 << 21, 1 << 21, 0))
        root = tmp_path
    out = root / "models"
    before = previous_run(out, untrained_mnist_model_path)
    rc, err = run_main(["train", *TINY, "--out-dir", str(out)])
    assert rc == 2
    one_line(err, f"cannot write {out}: only ", "MB free on its file system", "MB needed")
    assert tree(out) == before


# 3. A read-only folder

READ_ONLY_COMMANDS = {
    "train": ["train", *TINY, "--out-dir", "{ro}/models"],
    "analyze": ["analyze", "--digit", "4", "--model", "{model}", "--out", "{ro}/digit-4"],
    "oip": ["oip", "--layer", "conv_1", "--model", "{model}", "--out", "{ro}/oip"],
    "explore": ["explore", "--model", "{model}", "--out", "{ro}/explorer"],
    "experiment": ["experiment", "lines", "--out", "{ro}/experiments"],
    "concepts": ["concepts", "--model", "{model}", "--out", "{ro}/concepts"],
    "bench": ["bench", "--only", "oip"],  # writes bench/results.json under the current folder
}


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_read_only_folder_is_one_line_before_any_work(command, tmp_path, small_fs, monkeypatch,
                                                      untrained_mnist_model_path, run_main):
    folder = tmp_path / "outputs"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "mnist_cnn.keras").write_bytes(b"the earlier model")
    (folder / "models" / ".lock").touch()  # as the earlier training left it
    ro = read_only(folder, small_fs, monkeypatch)
    before = tree(ro)
    monkeypatch.chdir(ro)
    import mnist_cnn.app.common

    def no_work(*args):
        raise AssertionError("the command got as far as importing TensorFlow")
    monkeypatch.setattr(mnist_cnn.app.common, "quiet_tensorflow_import", no_work)
    argv = [a.format(ro=ro, model=untrained_mnist_model_path) for a in READ_ONLY_COMMANDS[command]]
    rc, err = run_main(argv)
    assert rc == 2
    one_line(err, f"mnist_cnn {command}: error: ", "cannot write bench" if command == "bench"
             else str(ro))
    assert "read-only" in err[0].lower() or "cannot write in" in err[0]
    assert tree(ro) == before


def test_a_folder_that_refuses_new_files_is_one_line(tmp_path, untrained_mnist_model_path,
                                                     run_main, monkeypatch):
    """As /proc does: creating a file in an existing folder fails with an error that is not one
    of the usual write faults (ENOENT)."""
    import errno
    import tempfile

    def refuse(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    rc, err = run_main(["concepts", "--model", untrained_mnist_model_path, "--out",
                        str(tmp_path / "concepts")])
    assert rc == 2
    one_line(err, f"cannot write {tmp_path}/concepts: no file can be created there (No such file")
    assert not (tmp_path / "concepts").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_train_into_a_folder_that_cannot_be_made_is_one_line(run_main):
    """/proc refuses new folders with ENOENT: the check must come before train's lock, which
    would otherwise try to make the folder and end in a traceback."""
    out = f"/proc/mnist_cnn-test-{os.getpid()}/models"
    rc, err = run_main(["train", *TINY, "--out-dir", out])
    assert rc == 2
    one_line(err, "mnist_cnn train: error: ", f"cannot write {out}")
    assert not os.path.exists(out)


def test_a_file_where_the_output_folder_should_be(tmp_path, untrained_mnist_model_path, run_main):
    (tmp_path / "report").write_text("not a folder")
    rc, err = run_main(["oip", "--layer", "conv_1", "--model", untrained_mnist_model_path,
                        "--out", str(tmp_path / "report" / "oip")])
    assert rc == 2
    one_line(err, f"{tmp_path}/report is a file, not a folder")
    assert (tmp_path / "report").read_text() == "not a folder"


# 4. Checkpoints


class _Epochs:
    """A callback recording the epochs fit runs."""

    def __new__(cls):
        import keras

        class Epochs(keras.callbacks.Callback):
            seen = []

            def on_epoch_begin(self, epoch, logs=None):
                self.seen.append(epoch)
        return Epochs()


def _tiny_fit(run_dir, epochs, callbacks=(), width=0):
    """A small Dense model fit with the atomic checkpoint (fast: no MNIST); `width` > 0 adds a
    hidden layer of that many units (a larger state)."""
    import keras
    import numpy as np

    from mnist_cnn.faults import AtomicBackupAndRestore

    keras.utils.set_random_seed(0)
    hidden = [keras.layers.Dense(width)] if width else []
    model = keras.Sequential([keras.Input((4,)), *hidden,
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  run_eagerly=True)  # no tracing: 4 steps of a 15-weight model
    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 3
    backup = AtomicBackupAndRestore(run_dir)
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[backup, *callbacks])
    return model, backup


class _StopAfter:
    def __new__(cls, epoch):
        import keras

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise KeyboardInterrupt
        return Stop()


def _epoch_of(path):
    import numpy as np

    with np.load(path) as saved:
        return int(saved["epoch"])


def test_checkpoint_is_one_file_per_epoch_and_a_damaged_one_falls_back(tmp_path, capsys):
    """After epoch 2 of 3 only epoch-0002.npz is left (written whole, then the older removed).
    Add what faults leave: a temporary file of a killed write (ignored, removed) and a newer
    state that is garbage (a damaged disk): the next run says so in one line, moves it to
    <run>.damaged/ and resumes after epoch 2, the last good state."""
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _tiny_fit(run, 3, [_StopAfter(1)])
    state = run / "state"
    assert sorted(p.name for p in state.iterdir()) == ["epoch-0002.npz"]
    assert _epoch_of(state / "epoch-0002.npz") == 2
    (state / ".epoch-0003.npz.x1y2.npz").write_bytes(b"half a state")
    (state / "epoch-0003.npz").write_bytes(b"garbage, as a damaged disk leaves it")
    capsys.readouterr()
    epochs = _Epochs()
    _tiny_fit(run, 3, [epochs])
    err = capsys.readouterr().err.strip().splitlines()
    one_line(err, f"the resume checkpoint {state}/epoch-0003.npz cannot be read (ValueError: not "
             f"an .npz archive); moved it to {run}.damaged/, resuming after epoch 2 (the last "
             "good state)")
    assert epochs.seen == [2]
    assert (Path(f"{run}.damaged") / "epoch-0003.npz").read_bytes().startswith(b"garbage")
    # Kept until the caller has written the model (train removes the run folder then).
    assert sorted(p.name for p in state.iterdir()) == ["epoch-0003.npz"]
    assert _epoch_of(state / "epoch-0003.npz") == 3


def test_a_damaged_checkpoint_is_set_aside_and_training_starts_again(
        tmp_path, monkeypatch, first_test_images, run_main):
    """Garbage over the checkpoint of an interrupted run (as a kill during its write would
    leave with Keras' own callback): the next run says so in one line, moves the run folder to
    <run id>.damaged, trains from scratch and finishes. (Its two figures are drawn empty: what
    they show is tested elsewhere, and drawing them is a third of this test's time.)"""
    import matplotlib.pyplot as plt

    from mnist_cnn import training
    from mnist_cnn.cli import build_parser
    from mnist_cnn.config import TrainConfig, fields
    from mnist_cnn.training import run_id

    for name in ("plot_confusion", "plot_learning_curves"):
        monkeypatch.setattr(training, name, lambda *args, **kwargs: plt.figure(figsize=(1, 1)))

    out = tmp_path / "models"
    argv = ["train", *TINY, "--out-dir", str(out)]
    args = build_parser().parse_args(argv)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    run = out / "backup" / run_id(config)
    (run / "state").mkdir(parents=True)  # Keras' own layout, which the landed code wrote
    (run / "state" / "latest.weights.h5").write_bytes(b"\x00garbage" * 100)
    (run / "state" / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    rc, err = run_main(argv)
    assert rc == 0
    one_line(err, f"the resume checkpoint {run / 'state'} cannot be read (",
             "file signature not found",
             f"moved {run} aside to {run}.damaged/, training from scratch")
    assert (out / "mnist_cnn.keras").is_file()
    damaged = Path(f"{run}.damaged") / "state" / "latest.weights.h5"
    assert damaged.read_bytes() == b"\x00garbage" * 100
    assert not run.exists()  # finished: the next run starts fresh


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_state(small_fs, tmp_path, monkeypatch,
                                                              capfd):
    """The disk fills up while epoch 2's state is written: one WriteError, nothing else on
    stderr, no temporary file, epoch 1's state intact."""
    import keras

    root = small_fs("400k")  # one state of the 4-4096-3 model (~260 kB) fits, two do not
    width = 4096
    if root is None:  # the second state's write fails halfway, as on a full disk
        import numpy as np

        root, width = tmp_path, 0
        real, calls = np.savez_compressed, []

        def savez(file, *args, **kwargs):
            calls.append(file)
            if len(calls) == 2:
                Path(file).write_bytes(b"half a state")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(file, *args, **kwargs)
        monkeypatch.setattr(np, "savez_compressed", savez)
    run = root / "run"
    capfd.readouterr()
    with pytest.raises(WriteError) as caught:
        _tiny_fit(run, 3, width=width)
    assert str(caught.value) == (f"cannot write {run}/state/epoch-0002.npz: No space left on "
                                 "device; free some space or write elsewhere")
    import gc

    gc.collect()  # whatever the failed write left open is freed by now
    assert capfd.readouterr().err == ""
    assert sorted(p.name for p in (run / "state").iterdir()) == ["epoch-0001.npz"]
    assert _epoch_of(run / "state" / "epoch-0001.npz") == 1


def test_sigterm_interrupts_a_training_like_ctrl_c():
    """`kill` (SIGTERM) becomes KeyboardInterrupt inside training, so temporary files are
    removed on the way out and the command prints its resume hint (exit 130); the previous
    handler is back afterwards."""
    import signal

    from mnist_cnn.faults import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
            raise AssertionError("SIGTERM did not interrupt")
    assert signal.getsignal(signal.SIGTERM) is before
