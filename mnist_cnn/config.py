"""One configuration object for training; every field is a command-line option.

Defaults are the measured recipe (see README, `make bench`). Each field's metadata says how the
command line parses and checks it, so `--epochs -1` is rejected before TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


def _opt(default, help, check=None, choices=None):
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and paths of one training run."""

    epochs: int = _opt(10, "training epochs", "positive")
    batch_size: int = _opt(64, "mini-batch size", "positive")
    lr: float = _opt(0.05, "peak learning rate of the schedule", "positive")
    lr_final: float = _opt(0.01, "learning rate at the end, as a fraction of --lr", "fraction")
    warmup_epochs: int = _opt(1, "epochs of linear warm-up before the decay", "non-negative")
    momentum: float = _opt(0.9, "SGD momentum", "fraction")
    l2: float = _opt(0.0005, "L2 penalty on every kernel", "non-negative")
    seed: int = _opt(0, "random seed (same seed, same machine: same metrics)", "non-negative")
    precision: str = _opt("auto", "compute dtype policy (auto: mixed_bfloat16 where bfloat16 is native "
                          "- AMX/AVX512-BF16 CPU or Ampere+ GPU - else float32)",
                          choices=("auto", "mixed_bfloat16", "float32"))
    augment: bool = _opt(True, "random shifts (±2 px) and rotations (±10°) of the training images")
    val_size: int = _opt(10000, "validation images taken from the end of the training set", "positive")
    val_every: int = _opt(2, "validate every N epochs (Keras validation_freq)", "positive")
    steps_per_execution: int = _opt(8, "training steps per call into TensorFlow (fewer Python round trips)",
                                    "positive")
    train_limit: int = _opt(0, "use only the first N training images (0: all)", "non-negative")
    out_dir: str = _opt("models", "where the model, metrics and figures go")
    data: str = _opt("", "explicit Keras-style mnist.npz (default: cache, download, mirror)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def model_path(self) -> str:
        return f"{self.out_dir}/mnist_cnn.keras"


def fields(cls=TrainConfig):
    """The dataclass fields of `cls`, for building command-line options."""
    return dataclasses.fields(cls)
