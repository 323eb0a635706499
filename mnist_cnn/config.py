"""What the command line must know before TensorFlow is imported about runs and where they
write: the training configuration, its recipe per data set, the augmentation per data set, the
default model and report paths, and the experiment names.

`TrainConfig` holds one training run; every field is a command-line option. Defaults are the
measured recipe (see README, `make bench`). Each field's metadata says how the command line
parses and checks it, so `--epochs -1` is rejected before TensorFlow is imported. The series'
network itself (its layer table and model names) is `mnist_cnn.series`, beside the model. This
module imports no TensorFlow or Keras, so `mnist_cnn.cli` can read it at no cost.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mnist_cnn.data.registry import DATASET_NAMES, get_dataset


def _opt(default, help, check=None, choices=None):
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and paths of one training run."""

    dataset: str = _opt("mnist", "data set to train on (its default --out-dir: models for mnist, "
                         "models/fashion for fashion)", choices=DATASET_NAMES)
    epochs: int = _opt(10, "training epochs", "positive")
    batch_size: int = _opt(None, "mini-batch size", "positive")
    lr: float = _opt(None, "peak learning rate of the schedule", "positive")
    lr_final: float = _opt(0.01, "learning rate at the end, as a fraction of --lr", "fraction")
    warmup_epochs: float = _opt(1.0, "epochs of linear warm-up before the cosine decay (fractions "
                                "allowed: the rate changes every step)", "non-negative")
    momentum: float = _opt(0.9, "SGD momentum", "fraction")
    ema: float = _opt(0.0, "keep an exponential moving average of the weights with this momentum "
                      "(about the last 1/(1-EMA) steps) and end with it (0: off)", "fraction")
    l2: float = _opt(None, "L2 penalty on every kernel", "non-negative")
    label_smoothing: float = _opt(None, "label smoothing of the cross-entropy (0: none)", "fraction")
    seed: int = _opt(0, "random seed (same seed, same machine: same metrics)", "non-negative")
    precision: str = _opt("auto", "compute dtype policy (auto: mixed_bfloat16 where bfloat16 is fast "
                          "- an AMX CPU or an Ampere+ GPU - else float32)",
                          choices=("auto", "mixed_bfloat16", "float32"))
    augment: bool = _opt(True, "augment the training images, by data set (AUGMENTATION): mnist "
                         "random shifts (±2 px) and rotations (±10°); fashion none (measured)")
    val_size: int = _opt(10000, "validation images taken from the end of the training set", "positive")
    val_every: int = _opt(0, "validate every N epochs (Keras validation_freq; 0: only after the "
                          "last epoch)", "non-negative")
    steps_per_execution: int = _opt(8, "training steps per call into TensorFlow (fewer Python round trips)",
                                    "positive")
    train_limit: int = _opt(0, "use only the first N training images (0: all)", "non-negative")
    out_dir: str = _opt("", "where the model, metrics and figures go (default: models for mnist, "
                        "models/fashion for fashion)")
    data: str = _opt("", "explicit Keras-style .npz of the data set (default: cache, download, mirror)")

    def __post_init__(self):
        object.__setattr__(self, "dataset", get_dataset(self.dataset).name)  # "fashion-mnist" too
        for name, value in RECIPES[self.dataset].items():  # None: the data set's measured value
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if not self.out_dir:
            object.__setattr__(self, "out_dir", default_out_dir(self.dataset))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def model_path(self) -> str:
        return f"{self.out_dir}/mnist_cnn.keras"


# Recipe values that differ per data set, measured (README: Training, Fashion-MNIST). A
# TrainConfig field left at None takes its data set's value; a value given explicitly wins.
RECIPES = {
    # 10 epochs, one cycle by step, mixed_bfloat16, Intel Xeon with AMX, seeds 0/1/2: batch 128
    # at 0.1 99.56/99.51/99.49%, a third less time per epoch than batch 64 (docs/benchmarks.md)
    "mnist": {"batch_size": 128, "lr": 0.1, "l2": 0.0005, "label_smoothing": 0.0},
    # 10 epochs, float32, seed 0, AMD EPYC: L2 5e-4 90.75%, L2 1e-4 91.02%, + smoothing 0.1 91.47%;
    # by step, seed 0, Intel Xeon with AMX: batch 64 at 0.05 91.66%, batch 128 at 0.1 91.25%
    "fashion": {"batch_size": 64, "lr": 0.05, "l2": 0.0001, "label_smoothing": 0.1},
}


def fields(cls=TrainConfig):
    """The dataclass fields of `cls`, for building command-line options."""
    return dataclasses.fields(cls)


def default_out_dir(dataset="mnist") -> str:
    """Where `train` writes by default: "models" for MNIST, "models/<name>" for the others, so
    the data sets never overwrite each other."""
    name = get_dataset(dataset).name
    return "models" if name == "mnist" else f"models/{name}"


def default_model(dataset="mnist") -> str:
    """The model `make train DATASET=...` writes, and every command's default --model for it."""
    return f"{default_out_dir(dataset)}/mnist_cnn.keras"


def report_dir(dataset="mnist", *parts) -> str:
    """Default folder of a report: reports/<parts> for MNIST, reports/<name>/<parts> otherwise.

    Every command that writes reports uses it (`analyze`, `oip`, `explore`), e.g.
    report_dir("fashion", "oip") == "reports/fashion/oip"."""
    name = get_dataset(dataset).name
    return "/".join(("reports",) + (() if name == "mnist" else (name,)) + parts)


def analyze_out_dir(dataset, label: int) -> str:
    """Default report folder of `analyze`: reports/digit-4 (MNIST), reports/fashion/class-6-shirt."""
    import re

    info = get_dataset(dataset)
    if info.name == "mnist":
        return report_dir(info.name, f"digit-{label}")
    slug = "-".join(w for w in re.split(r"[^a-z0-9]+", info.class_name(label).lower()) if w)
    return report_dir(info.name, f"class-{label}-{slug}")


# The training augmentation of each data set (mnist_cnn.pipeline.augment: one affine map each):
# "translate" ±2 px shifts, "rotate" ±10° rotations, "flip" random horizontal flips. Digits are
# not mirror-symmetric; clothes are (a left shoe mirrored is a right shoe).
# Fashion: none, measured (10 epochs, batch 64, float32, seed 0, AMD EPYC): flip + shift 89.50%,
# none 90.75% test accuracy; within 10 epochs augmentation only slows the fit down (README).
AUGMENTATION = {"mnist": ("translate", "rotate"), "fashion": ()}

# The model `train` writes with the default configuration, and every command's default --model.
DEFAULT_MODEL = TrainConfig().model_path  # "models/mnist_cnn.keras"; the Makefile names it too

# The filter-learning experiments (`make experiment NAME=...`), in the order of `all` (cheap
# first); analysis/experiments/ has one module per name.
EXPERIMENTS = ("single-image", "lines", "reference", "two-runs")
