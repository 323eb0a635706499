"""Training: accuracy of a short run, artefacts, determinism, resuming after an interruption."""

import json
import math
from pathlib import Path

import keras
import pytest

from mnist_cnn.config import TrainConfig
from mnist_cnn.fileio import atomic_path
from mnist_cnn.training import lr_schedule, steps_per_epoch, train


def test_short_training_learns(tiny_run):
    config, metrics = tiny_run
    assert metrics["test_accuracy"] > 0.95  # held-out test images, after 2 epochs on 8000
    out = Path(config.out_dir)
    for name in ("mnist_cnn.keras", "metrics.json", "history.json", "confusion_matrix.png",
                 "learning_curves.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    assert len(saved["per_class_accuracy"]) == 10 and saved["versions"]["keras"] == keras.__version__
    assert sum(map(sum, saved["confusion_matrix"])) == 10000
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0, 1] and len(history["val_accuracy"]) == 2
    assert history["val_accuracy"][0] is None and history["val_accuracy"][1] > 0.9  # val_every 0: at the end
    assert any((out / "logs").rglob("*tfevents*"))
    assert not (out / "backup").exists() or not any((out / "backup").iterdir())


@pytest.mark.heavy
def test_same_seed_same_metrics(tmp_path, first_test_images):
    """Same seed, same machine, same process: identical numbers, augmentation included (a short
    run, so the test stays cheap; the shuffle, augmentation and initialisation are all seeded)."""
    config = TrainConfig(epochs=1, train_limit=1000, batch_size=50, augment=True, val_every=1,
                         val_size=500, precision="float32", steps_per_execution=1,
                         out_dir=str(tmp_path / "a"))
    first = train(config, verbose=0)
    again = train(TrainConfig(**{**config.to_dict(), "out_dir": str(tmp_path / "b")}), verbose=0)
    for key in ("test_accuracy", "test_loss", "val_accuracy", "confusion_matrix"):
        assert again[key] == first[key], key


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


@pytest.mark.heavy
def test_interrupted_training_resumes(tmp_path, first_test_images):
    """Killed in the middle of epoch 2 (after its first step), the next run restores epochs 0-1
    and trains only epoch 2, every step at the rate the per-step schedule gives an uninterrupted
    run at that step (issue 25: the rate follows the optimizer's restored step counter). With
    validation every 2 epochs, the resumed epoch 2 is not validated but epoch 1 was: the history
    keeps both kinds of rows under the right columns."""
    config = TrainConfig(epochs=3, train_limit=600, batch_size=100, augment=False, val_every=2,
                         val_size=500, precision="float32", steps_per_execution=1, lr=0.1,
                         warmup_epochs=1, lr_final=0.1, out_dir=str(tmp_path))
    killed = _StepRates(kill_epoch=2, kill_step=0)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[killed], verbose=0)
    assert not Path(config.model_path).exists()  # nothing half-done under the final name
    epochs, resumed = _Epochs(), _StepRates()
    metrics = train(config, callbacks=[epochs, resumed], verbose=0)
    assert epochs.seen == [2]  # epochs 0 and 1 were restored, not rerun
    steps = steps_per_epoch(config, config.train_limit)
    schedule = lr_schedule(config, steps)
    assert sorted(resumed.rates) == [(2, step) for step in range(steps)]  # all of epoch 2 again
    for (epoch, step), rate in {**killed.rates, **resumed.rates}.items():
        expected = float(keras.ops.convert_to_numpy(schedule(epoch * steps + step)))
        assert rate == pytest.approx(expected, rel=1e-6), (epoch, step)
    assert len({round(r, 6) for r in resumed.rates.values()}) == steps  # it changes every step
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2]
    assert history["val_accuracy"][0] is None and history["val_accuracy"][2] is None
    assert 0 < history["val_accuracy"][1] <= 1 and metrics["val_accuracy"] == history["val_accuracy"][1]
    assert all(0 < lr <= config.lr * (1 + 1e-6) for lr in history["learning_rate"])  # float32
    assert all(loss > 0 for loss in history["loss"])


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-save")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_recipe_values_per_dataset_and_explicit_values_win():
    from mnist_cnn.config import RECIPES

    assert TrainConfig().l2 == 0.0005 and TrainConfig().label_smoothing == 0.0
    fashion = TrainConfig(dataset="fashion")
    assert (fashion.l2, fashion.label_smoothing) == (RECIPES["fashion"]["l2"],
                                                     RECIPES["fashion"]["label_smoothing"])
    assert TrainConfig(dataset="fashion", l2=0.0005, label_smoothing=0.0).l2 == 0.0005
    assert TrainConfig(dataset="fashion", label_smoothing=0.0).label_smoothing == 0.0


def test_run_ids_change_with_the_schedule_and_settings_only():
    """A checkpoint resumes only into the run it belongs to: the ids of runs made under the
    per-epoch schedule (before issue 25) no longer match, since their rates would differ; a
    setting that changes the run changes the id, the output folder does not."""
    from mnist_cnn.training import run_id

    old = dict(precision="float32", val_every=2)  # per-epoch schedule ids of that recipe
    assert run_id(TrainConfig(**old)) != "362cc86d6ac0"
    assert run_id(TrainConfig(**old, epochs=3, seed=2)) != "6284fabb9cfc"
    base = run_id(TrainConfig(**old))
    assert run_id(TrainConfig(**old, out_dir="elsewhere")) == base
    for change in (dict(label_smoothing=0.1), dict(ema=0.99), dict(warmup_epochs=0.5)):
        assert run_id(TrainConfig(**old, **change)) != base, change


def test_smoothed_labels_train_on_one_hot_targets():
    import numpy as np

    from mnist_cnn.training import compiled_model, targets

    labels = np.array([3, 0, 9])
    plain, smooth = TrainConfig(precision="float32"), TrainConfig(precision="float32", label_smoothing=0.1)
    assert targets(labels, plain) is labels
    assert targets(labels, smooth).tolist() == np.eye(10)[labels].tolist()
    loss = compiled_model(smooth).loss
    assert isinstance(loss, keras.losses.CategoricalCrossentropy)
    assert loss.get_config()["label_smoothing"] == 0.1
    assert compiled_model(plain).loss == "sparse_categorical_crossentropy"


def _rates(config, steps):
    """The schedule's rate at every step 0 .. epochs * steps, in one graph (the schedule takes one
    step at a time: 3,911 eager calls took 3.1 s, this 0.14 s, the same values)."""
    import tensorflow as tf

    schedule = lr_schedule(config, steps)
    every = tf.function(lambda n: tf.map_fn(schedule, tf.range(n), fn_output_signature=tf.float32))
    return every(config.epochs * steps + 1).numpy().tolist()


def test_learning_rate_schedule_is_one_cycle_by_step():
    """Linear warm-up from lr * lr_final to lr over warmup_epochs (fractions too), then a cosine
    decay that reaches lr * lr_final at the last step."""
    config = TrainConfig(epochs=4, lr=0.1, lr_final=0.01, warmup_epochs=0.5)
    rates = _rates(config, steps=10)
    assert rates[0] == pytest.approx(0.001) and max(rates) == pytest.approx(0.1)
    assert rates.index(max(rates)) == 5  # half an epoch of 10 steps
    assert rates[2] == pytest.approx(0.001 + 0.099 * 2 / 5)  # linear
    assert rates[-1] == pytest.approx(0.001)
    for k in (7, 17, 30):  # cosine over the 35 steps after the warm-up
        assert rates[5 + k] == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * k / 35)))
    assert all(a < b for a, b in zip(rates[:5], rates[1:6]))
    assert all(a >= b for a, b in zip(rates[5:], rates[6:]))
    no_warmup = _rates(TrainConfig(epochs=2, lr=0.1, lr_final=0.01, warmup_epochs=0), steps=10)
    assert no_warmup[0] == pytest.approx(0.1) and no_warmup[-1] == pytest.approx(0.001)


def test_steps_per_epoch_counts_the_last_short_batch():
    assert steps_per_epoch(TrainConfig(batch_size=128), 50_000) == 391
    assert steps_per_epoch(TrainConfig(batch_size=100), 600) == 6


def test_one_training_per_output_folder(tmp_path, cli_batch):
    """A second training into a folder in use gets one line naming the first, before TensorFlow."""
    import os

    from mnist_cnn.errors import UserError
    from mnist_cnn.fileio import exclusive_lock

    with exclusive_lock(tmp_path):
        with pytest.raises(UserError, match=f"in use by training pid {os.getpid()}"):
            with exclusive_lock(tmp_path):
                pass
        second, = cli_batch([["train", "--epochs", "1", "--out-dir", str(tmp_path)]])
    assert second["rc"] == 2
    lines = second["stderr"].splitlines()
    assert len(lines) == 1, second["stderr"]
    assert lines[0].startswith(f"mnist_cnn train: error: {tmp_path}/ is in use by training pid "
                               f"{os.getpid()} (started ")
    assert not second["tensorflow"]  # refused before TensorFlow was imported
    with exclusive_lock(tmp_path):  # released: the next one gets it
        pass


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
    import signal
    import subprocess
    import sys

    from mnist_cnn.fileio import exclusive_lock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from mnist_cnn.fileio import exclusive_lock\n"
        f"with exclusive_lock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    from mnist_cnn.errors import UserError

    with pytest.raises(UserError, match=f"pid {holder.pid}"):
        with exclusive_lock(tmp_path):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with exclusive_lock(tmp_path):  # the OS dropped the dead holder's lock
        pass


def test_recipe_is_what_docs_training_says():
    """The `make train [NAME=value]` line of docs/training.md states the default recipe: its
    epochs, batch, peak rate, momentum and L2 equal TrainConfig's, and the schedule's prose
    (warm-up epochs, batch, epochs, validation interval) matches too."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    usage = next(line for line in text.splitlines() if line.startswith("make train ["))
    stated = dict(re.findall(r"\[([A-Z_0-9]+)=([^\]\s]+)\]", usage))
    config = TrainConfig()
    assert int(stated["EPOCHS"]) == config.epochs
    assert int(stated["BATCH"]) == config.batch_size
    assert float(stated["LR"]) == config.lr
    assert float(stated["MOMENTUM"]) == config.momentum
    assert float(stated["L2"]) == config.l2
    words = {0: "no", 1: "one", 2: "two", 3: "three"}
    assert f"{words[config.warmup_epochs]} warm-up epoch" in text
    assert f"batch {config.batch_size}, {config.epochs} epochs" in text
    assert (f"validation every {config.val_every} epochs" if config.val_every
            else "validation only after the last epoch") in text
    assert f"{config.steps_per_execution} steps per call" in text
    steps = steps_per_epoch(config, 60_000 - config.val_size)
    rates = _rates(config, steps)
    assert max(rates) == pytest.approx(config.lr)
    assert rates.index(max(rates)) == round(config.warmup_epochs * steps)
    assert rates[-1] == pytest.approx(config.lr * config.lr_final)


class _StepRates(keras.callbacks.Callback):
    """The learning rate each training step runs with, by (epoch, step); optionally killed in
    the middle of epoch `kill_epoch` (after step `kill_step`)."""

    def __init__(self, kill_epoch=None, kill_step=None):
        super().__init__()
        self.rates, self.epoch = {}, None
        self.kill_epoch, self.kill_step = kill_epoch, kill_step

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.rates[(self.epoch, batch)] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch == self.kill_step:
            raise KeyboardInterrupt


def test_ema_ends_with_the_average_of_the_weights():
    """--ema keeps a moving average of the weights (Keras' use_ema) and the fit ends with it:
    the weights after `fit` are not the last step's, and without --ema they are."""
    import numpy as np

    from mnist_cnn.training import compiled_model

    rng = np.random.default_rng(0)
    ends = {}
    for ema in (0.0, 0.9):
        keras.utils.set_random_seed(0)
        model = compiled_model(TrainConfig(precision="float32", ema=ema, steps_per_execution=1), steps=4)
        x = rng.random((64, *model.input_shape[1:]), dtype=np.float32)
        y = rng.integers(0, 10, 64)
        last = {}

        class Last(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                last["weights"] = [w.copy() for w in self.model.get_weights()]

        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[Last()])
        ends[ema] = [np.array_equal(a, b) for a, b in zip(model.get_weights(), last["weights"])]
    assert all(ends[0.0]) and not any(ends[0.9])
