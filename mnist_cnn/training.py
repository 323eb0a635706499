"""Train the series' CNN (or your own model): SGD with momentum, a one-cycle learning-rate
schedule by step (linear warm-up, cosine decay), L2.

`train(config, model=None)` writes, each atomically, into `config.out_dir`: mnist_cnn.keras, metrics.json,
history.json, confusion_matrix.png, learning_curves.png, and TensorBoard logs under logs/.
An interrupted run resumes from its last finished epoch (Keras' BackupAndRestore, written
atomically), as long as the configuration is the same. A run whose loss diverges stops and
writes nothing; the model file is only ever replaced by a run that finished (`mnist_cnn.faults`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mnist_cnn.config import AUGMENTATION, TrainConfig
from mnist_cnn.data import load_dataset, to_input
from mnist_cnn.data.registry import get_dataset
from mnist_cnn.evaluate import evaluate, plot_confusion, plot_learning_curves
from mnist_cnn.faults import (AtomicBackupAndRestore, Diverged, DivergenceGuard,
                              discard_if_diverged, explosion_limit, notice, set_aside,
                              sigterm_as_interrupt)
from mnist_cnn.fileio import atomic_group, check_writable, exclusive_lock, save_figure, write_json
from mnist_cnn.model import build_model
from mnist_cnn.pipeline import batches, training_dataset
from mnist_cnn.precision import machine_facts, resolve


def split(config: TrainConfig, data_path=None):
    """Training, validation (last `val_size` training images) and test arrays, model-ready."""
    (x_train, y_train), (x_test, y_test) = load_dataset(config.dataset,
                                                        data_path or config.data or None)
    n_fit = len(x_train) - config.val_size
    x_fit, y_fit = x_train[:n_fit], y_train[:n_fit]
    if config.train_limit:
        x_fit, y_fit = x_fit[:config.train_limit], y_fit[:config.train_limit]
    return ((to_input(x_fit), y_fit), (to_input(x_train[n_fit:]), y_train[n_fit:]),
            (to_input(x_test), y_test))


def steps_per_epoch(config: TrainConfig, train_images: int) -> int:
    """Training steps in one epoch of `train_images` (the last batch may be smaller)."""
    return math.ceil(train_images / config.batch_size)


def lr_schedule(config: TrainConfig, steps: int) -> keras.optimizers.schedules.CosineDecay:
    """The learning rate of every training step, as a Keras schedule of the step count.

    One cycle: linear warm-up from `lr * lr_final` to `lr` over the first `warmup_epochs`,
    then cosine decay to `lr * lr_final` at the last step. `steps` is `steps_per_epoch`. The
    optimizer's step counter drives it, and that counter is part of the checkpoint, so a
    resumed run continues at the rate where it stopped.
    """
    warmup = round(config.warmup_epochs * steps)
    floor = config.lr * config.lr_final
    return keras.optimizers.schedules.CosineDecay(
        floor, decay_steps=max(config.epochs * steps - warmup, 1), alpha=config.lr_final,
        warmup_target=config.lr, warmup_steps=warmup)


def compiled_model(config: TrainConfig, model=None, steps: int | None = None) -> keras.Model:
    """The untrained network under `config.precision` (resolved for this machine), compiled with
    the recipe's SGD and loss (cross-entropy; on one-hot targets when labels are smoothed, see
    `targets`). `steps`: training steps per epoch, for the schedule (`lr_schedule`); None
    keeps the rate at `config.lr` (timings that do not train to the end). `model`: a network
    of the user's (any that `mnist_cnn.network.describe` accepts, with the data set's classes)
    instead of the series' one; it keeps its own regularisers (`config.l2` is the series'
    network's) and is copied under the precision."""
    if model is None:
        model = build_model(l2=config.l2, dtype_policy=resolve(config.precision), dataset=config.dataset)
    else:
        from mnist_cnn.model import with_policy
        from mnist_cnn.network import describe

        describe(model, "the model to train", num_classes=get_dataset(config.dataset).num_classes)
        model = with_policy(model, resolve(config.precision))
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
            if config.label_smoothing else "sparse_categorical_crossentropy")
    rate = config.lr if steps is None else lr_schedule(config, steps)
    optimizer = keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum,
                                     use_ema=bool(config.ema), ema_momentum=config.ema or 0.99)
    model.compile(optimizer=optimizer,
                  loss=loss, metrics=["accuracy"], steps_per_execution=config.steps_per_execution)
    return model


def targets(labels, config: TrainConfig) -> np.ndarray:
    """What the loss compares predictions with: the labels, or one-hot rows when labels are
    smoothed (Keras smooths only one-hot targets)."""
    if not config.label_smoothing:
        return labels
    return np.eye(get_dataset(config.dataset).num_classes, dtype="float32")[labels]


def run_id(config: TrainConfig, model=None) -> str:
    """Short digest of the settings that define a run (resume only into the same run); a
    user's model adds its architecture."""
    keys = {k: v for k, v in config.to_dict().items() if k not in ("out_dir", "data")}
    if model is not None:
        keys["model"] = hashlib.sha256(model.to_json().encode()).hexdigest()
    keys["augmentation"] = AUGMENTATION[keys["dataset"]]
    keys["precision"] = resolve(config.precision)  # "auto" may differ between machines
    keys["schedule"] = "one cycle by step"  # a checkpoint of the older per-epoch schedule does not resume
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:12]


class LearningRateLog(keras.callbacks.Callback):
    """Puts the rate the schedule has reached into each epoch's logs (history.csv's column)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class HistoryCSV(keras.callbacks.CSVLogger):
    """Keras' CSVLogger with its columns fixed before training starts.

    The stock logger takes its columns from the first epoch it sees. With validation every
    `val_every` epochs, a run resumed at a validated epoch would append rows in another column
    order than the header it appends to.
    """

    COLUMNS = ("accuracy", "learning_rate", "loss", "val_accuracy", "val_loss")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.keys = list(self.COLUMNS)


def read_history(csv_path: Path) -> dict:
    """Per-epoch logs from CSVLogger, keeping the last row of each epoch (resumes may repeat).

    Epochs without validation (see `val_every`) have None for the val_ keys."""
    rows = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    history = {"epoch": sorted(rows)}
    for key in next(iter(rows.values()), {}):
        if key != "epoch":
            history[key] = [None if rows[e][key] in ("", "NA") else float(rows[e][key])
                            for e in history["epoch"]]
    return history


def _set_aside_unreadable_history(log_csv: Path, work: Path) -> None:
    """A resume history that cannot be parsed (a damaged disk, an edit) goes aside with its run
    folder: the run starts from scratch, said in one line, instead of failing at the end."""
    if log_csv.is_file():
        try:
            read_history(log_csv)
        except (ValueError, KeyError, csv.Error) as err:
            where = set_aside([work], work)
            notice(f"the training history {log_csv} cannot be read ({type(err).__name__}); "
                   f"moved {work} to {where}/, training from scratch")


def library_versions() -> dict:
    import matplotlib
    import sklearn

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train(config: TrainConfig, callbacks=(), verbose=1, model=None) -> dict:
    """Train, evaluate on the test set and write every artefact.

    Parameters
    ----------
    config : TrainConfig
    model : keras.Model, optional
        The user's own untrained network (see `compiled_model`); default the series' one.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks (tests use one to interrupt a run).
    verbose : int
        Keras' fit verbosity (1: the per-epoch progress bar).

    Returns
    -------
    dict
        The metrics written to metrics.json.

    Raises
    ------
    UserError
        If another training is writing into `config.out_dir` (one writer per folder).
    mnist_cnn.faults.TrainingDiverged
        If the loss became NaN/inf or exploded; nothing was written, the run's state is gone.
    mnist_cnn.fileio.WriteError
        If `config.out_dir` cannot take the files (no space, read-only, ...); the files from
        before are untouched and the last epoch's state is kept for the next run.
    """
    with exclusive_lock(config.out_dir), sigterm_as_interrupt():
        return _train(config, callbacks, verbose, model)


def _train(config: TrainConfig, callbacks, verbose, user_model=None) -> dict:
    seed_everything(config.seed)
    out = Path(config.out_dir)
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = split(config)

    model = compiled_model(config, user_model, steps_per_epoch(config, len(x_fit)))
    # Room for the model file (weights and momenta, float32) and two checkpoints of the same
    # size while one replaces the other, plus the figures: checked now, not after the training.
    check_writable(out, need_bytes=6 * 4 * model.count_params() + 2**20)

    rid = run_id(config, user_model)
    work = out / "backup" / rid
    log_csv = work / "history.csv"
    fit_callbacks = [
        AtomicBackupAndRestore(work),  # first: it may set the run folder aside before the others
        DivergenceGuard(explosion_limit(model)),
        LearningRateLog(),
        HistoryCSV(str(log_csv), append=True),
        keras.callbacks.TensorBoard(str(out / "logs" / rid), histogram_freq=0),
        *callbacks,
    ]
    started = time.perf_counter()
    with discard_if_diverged(config, work, out / "logs"):
        _set_aside_unreadable_history(log_csv, work)
        work.mkdir(parents=True, exist_ok=True)
        model.fit(training_dataset(x_fit, targets(y_fit, config), config),
                  validation_data=batches(x_val, targets(y_val, config), batch_size=1000),
                  validation_freq=config.val_every or config.epochs, epochs=config.epochs, callbacks=fit_callbacks,
                  verbose=verbose,
                  shuffle=False)  # the dataset shuffles itself, seeded
        seconds = time.perf_counter() - started
        result = evaluate(model, x_test, y_test)
        if not math.isfinite(result["loss"]):  # the last update, after the last checked loss
            raise Diverged(config.epochs - 1, None, None, result["loss"])

    history = read_history(log_csv)
    info = get_dataset(config.dataset)
    metrics = {
        "dataset": info.name, "class_names": list(info.class_names),
        "test_accuracy": result["accuracy"], "test_loss": result["loss"],
        "per_class_accuracy": result["per_class_accuracy"],
        "confusion_matrix": result["confusion_matrix"].tolist(),
        "val_accuracy": next((a for a in reversed(history.get("val_accuracy", [])) if a is not None), None),
        "training_seconds": round(seconds, 2), "epochs": config.epochs,
        "train_images": len(x_fit),
        "augmentation": list(AUGMENTATION[info.name]) if config.augment else [],
        "config": config.to_dict(), "versions": library_versions(),
        "machine": machine_facts(resolve(config.precision)),
    }

    with atomic_group() as stage:  # all or nothing: a full disk leaves the previous set whole
        model.save(stage(config.model_path))
        write_json(stage(out / "history.json"), history)
        write_json(stage(out / "metrics.json"), metrics)
        save_figure(plot_confusion(result["confusion_matrix"], info.name),
                    stage(out / "confusion_matrix.png"))
        save_figure(plot_learning_curves(history, floor=0.9 if info.name == "mnist" else 0.5),
                    stage(out / "learning_curves.png"))
    shutil.rmtree(work, ignore_errors=True)  # finished: the next run starts fresh
    return metrics
