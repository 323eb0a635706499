"""What training does when things go wrong: a diverging loss, a kill mid-write, a damaged resume
checkpoint. `mnist_cnn.training` uses these; docs/troubleshooting.md says what the user sees.

* `DivergenceGuard` stops the run at the first batch whose loss is not finite or has exploded
  (`explosion_limit`); `train` then discards the run and raises `TrainingDiverged`, so no model
  file is ever replaced by a diverged run.
* `AtomicBackupAndRestore` is Keras' BackupAndRestore with its state written atomically: each
  epoch's state goes to a temporary file that is renamed to `state/epoch-NNNN.npz` when
  complete, and only then is the previous one removed. A kill at any moment leaves the old
  state or the new one. A state that cannot be read anyway (a damaged disk, a hand-edited file,
  Keras' own non-atomic layout from an older version) is moved aside to `<run id>.damaged/`,
  said in one line, and the run resumes from the last good state or from scratch.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np

from mnist_cnn.errors import UserError
from mnist_cnn.fileio import save_npz


class TrainingDiverged(UserError):
    """The training loss became NaN/inf or exploded; nothing was written."""


class Diverged(Exception):
    """Raised inside fit by DivergenceGuard (epoch and step 0-based; steps per epoch)."""

    def __init__(self, epoch, step, steps, loss):
        self.epoch, self.step, self.steps, self.loss = epoch, step, steps, loss
        super().__init__(f"loss {loss} at epoch {epoch}, step {step}")


def explosion_limit(model) -> float:
    """A training loss above this has exploded: 100 times the cross-entropy of a uniform guess
    over the model's classes (a trained network's loss is far below that guess, and Keras'
    clipped cross-entropy alone cannot exceed 16.1; what is left is the L2 term of weights that
    are blowing up)."""
    return 100 * math.log(model.output_shape[-1])


class DivergenceGuard(keras.callbacks.Callback):
    """Raise `Diverged` at the first batch whose (running mean) loss is not finite or exceeds
    `limit`. Raising inside fit, rather than Keras' TerminateOnNaN stopping it, means the epoch
    never ends: no checkpoint of the diverged weights is written, no validation runs on them."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not (math.isfinite(float(loss)) and float(loss) <= self.limit):
            raise Diverged(self.epoch, batch, self.params.get("steps"), float(loss))


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def notice(message: str) -> None:
    """One line on stderr (the progress bars go to stdout)."""
    print(f"mnist_cnn train: {message}", file=sys.stderr, flush=True)


def set_aside(paths, run_dir: Path) -> Path:
    """Move `paths` (the run folder itself, or some of its files) into `<run_dir>.damaged/`,
    replacing an older one there; return that folder. Kept, not deleted: the user may look."""
    run_dir = Path(run_dir)
    damaged = run_dir.with_name(run_dir.name + ".damaged")
    if damaged.exists():
        shutil.rmtree(damaged)
    if list(paths) == [run_dir]:
        run_dir.rename(damaged)
        run_dir.mkdir()
    else:
        damaged.mkdir()
        for p in paths:
            Path(p).rename(damaged / Path(p).name)
    return damaged


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore (per epoch) with atomic, verified states under `<run_dir>/state/`.

    Each state is one file, `state/epoch-NNNN.npz`: the values of the model's weights and the
    optimizer's variables (momenta, step count) in their fixed order, and the epoch. It is
    written beside its final name and renamed into place (`fileio.save_npz`); only then is the
    previous one removed. NumPy writes it through Python's file objects, so a full disk is an
    ordinary OSError (one line); h5py, which Keras' own callback writes with, fails on a full
    disk in a way that prints from its destructors and can crash the interpreter later.

    The last state is kept when fit ends: the caller removes the run folder once the model and
    its artefacts are written, so a full disk or a kill at that point costs no training (the
    next run restores the last epoch and only writes them).

    Parameters
    ----------
    run_dir : Path
        The run's work folder (`models/backup/<run id>`); its other files (history.csv) are
        set aside with it when no state can be read.
    """

    WEIGHTS, METADATA = "latest.weights.h5", "training_metadata.json"  # Keras' own layout

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.state = self.run_dir / "state"
        super().__init__(str(self.state), delete_checkpoint=False)

    def states(self) -> list:
        """Saved states, newest first (Keras' own layout, from an older version: last)."""
        found = sorted(((int(p.stem[6:]), p) for p in self.state.glob("epoch-*.npz")
                        if p.stem[6:].isdigit()), reverse=True)
        found = [p for _, p in found]
        if (self.state / self.WEIGHTS).is_file():
            found.append(self.state)
        return found

    def _variables(self) -> list:
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return list(self.model.weights) + list(optimizer.variables if optimizer else [])

    def _save_model(self):
        final = self.state / f"epoch-{self._current_epoch:04d}.npz"
        values = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(self._variables())}
        save_npz(final, epoch=np.int64(self._current_epoch), **values)
        for older in self.states():  # only now, with the new state complete
            if older == self.state:
                for name in (self.WEIGHTS, self.METADATA):
                    (self.state / name).unlink(missing_ok=True)
            elif older != final:
                older.unlink(missing_ok=True)

    def _load_from(self, path: Path, variables: list) -> int:
        """Restore one state into `variables`; return its epoch. Raises if it is unusable."""
        if path == self.state:  # Keras' layout: its own loader
            if not (path / self.METADATA).is_file():
                raise FileNotFoundError(f"{path / self.METADATA} is missing")
            self.model.load_weights(str(path / self.WEIGHTS))
            epoch = json.loads((path / self.METADATA).read_text())["epoch"]
        else:
            if not zipfile.is_zipfile(path):  # else NumPy takes it for a pickle, and says so
                raise ValueError("not an .npz archive")
            with np.load(path) as saved:  # no pickles (allow_pickle is off)
                if len(saved.files) != len(variables) + 1:
                    raise ValueError(f"{len(saved.files) - 1} arrays for "
                                     f"{len(variables)} variables")
                values = [saved[f"v{i}"] for i in range(len(variables))]
                epoch = int(saved["epoch"])
            for v, value in zip(variables, values):
                if tuple(v.shape) != value.shape:
                    raise ValueError(f"{v.path}: shape {value.shape}, expected {tuple(v.shape)}")
            for v, value in zip(variables, values):  # all checked first: no half-restored state
                v.assign(value)
        if not isinstance(epoch, int) or not 0 <= epoch <= self.params.get("epochs", epoch):
            raise ValueError(f"epoch {epoch!r} in {path}")
        return epoch

    def on_train_begin(self, logs=None):
        for leftover in self.state.glob(".epoch-*"):  # a write killed before its rename
            leftover.unlink(missing_ok=True)
        candidates = self.states()
        if not candidates:
            return
        variables = self._variables()
        initial = [v.numpy() for v in variables]  # Keras' loader may stop halfway
        damaged = []
        for path in candidates:
            try:
                self.model._initial_epoch = self._load_from(path, variables)
                break
            except Exception as err:  # NumPy, zipfile, h5py, JSON: each raises its own type
                damaged.append((path, err))
                for v, value in zip(variables, initial):
                    v.assign(value)
                self.model._initial_epoch = None
        if not damaged:
            return
        first, err = damaged[0]
        if len(damaged) == len(candidates):
            where = set_aside([self.run_dir], self.run_dir)
            then = f"moved {self.run_dir} aside to {where}/, training from scratch"
        else:
            where = set_aside([p for p, _ in damaged], self.run_dir)
            then = (f"moved it to {where}/, resuming after epoch {self.model._initial_epoch} "
                    "(the last good state)")
        notice(f"the resume checkpoint {first} cannot be read ({_reason(err)}); {then}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM (`kill`, a batch system's time limit) interrupts like Ctrl-C:
    temporary files are removed on the way out and the command says how to resume, instead of
    the process vanishing mid-write. Only the main thread can take signals; elsewhere no-op."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _snapshot(folder: Path) -> set:
    return {folder, *folder.rglob("*")} if folder.exists() else set()


@contextlib.contextmanager
def discard_if_diverged(config, run_dir: Path, logs: Path):
    """Run the block; if it raises `Diverged`, remove what the run wrote (its work folder, its
    new TensorBoard files, the backup folder if the run created it) and raise TrainingDiverged,
    one line saying where it happened and what to try. The output folder is left as it was."""
    run_dir, logs = Path(run_dir), Path(logs)
    backup_existed = run_dir.parent.exists()
    logs_before = _snapshot(logs)
    try:
        yield
    except Diverged as d:
        shutil.rmtree(run_dir, ignore_errors=True)  # also a resumed run's state: start clean
        for p in sorted(_snapshot(logs) - logs_before, key=lambda p: len(p.parts), reverse=True):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        if not backup_existed and run_dir.parent.is_dir() and not any(run_dir.parent.iterdir()):
            run_dir.parent.rmdir()
        if d.step is None:
            where = f"in its last step (test loss {d.loss:.4g})"
        else:
            where = (f"at epoch {d.epoch + 1}/{config.epochs}, step {d.step + 1}"
                     f"{f'/{d.steps}' if d.steps else ''} (loss {d.loss:.4g})")
        raise TrainingDiverged(
            f"training diverged {where}; stopped, nothing saved "
            f"({config.out_dir}/ is as it was); try a smaller --lr (now {config.lr:g}) or "
            f"--momentum (now {config.momentum:g})") from None
