"""`mnist_cnn train`: train the series' network with the recipe (`mnist_cnn.training.train`)."""

from __future__ import annotations

import argparse

from mnist_cnn.app.common import dataset_name, number
from mnist_cnn.config import RECIPES, TrainConfig, default_out_dir, fields
from mnist_cnn.errors import UserError


def add(sub):
    p = sub.add_parser("train", help="train the CNN and write models/")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        meta = f.metadata
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                           help=f"{meta['help']} (default {'on' if f.default else 'off'})")
        elif f.name == "dataset":
            p.add_argument(flag, type=dataset_name, default=f.default, metavar="NAME",
                           help=f"{meta['help']} (one of {', '.join(meta['choices'])}; "
                                f"default {f.default})")
        elif meta["choices"]:
            p.add_argument(flag, default=f.default, choices=meta["choices"], help=meta["help"])
        else:
            kind = {"int": int, "float": float}.get(f.type, str)
            parse = number(kind, meta["check"]) if kind is not str else str
            default = (f"default {f.default!r}" if f.default is not None else "default " +
                       ", ".join(f"{d} {RECIPES[d][f.name]!r}" for d in RECIPES))
            p.add_argument(flag, type=parse, default=f.default, help=f"{meta['help']} ({default})")
    return p


def check(args):
    """Fail fast, before TensorFlow: bad data file, or another training writing into --out-dir."""
    from mnist_cnn.app.common import check_data
    from mnist_cnn.fileio import check_writable, exclusive_lock

    check_data(args)
    args.out_dir = args.out_dir or default_out_dir(args.dataset)
    check_writable(args.out_dir)  # one line, not the lock's traceback, where nothing can be written
    if args.train_limit == 0 and args.val_size >= 60000:
        raise UserError("--val-size must leave training images (< 60000)")
    with exclusive_lock(args.out_dir):  # released at once; train() holds it for the whole run
        pass


def run(args):
    from mnist_cnn.precision import explain, resolve
    from mnist_cnn.training import train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    if config.precision == "auto":  # measured once per machine, then cached (precision.py)
        print(f"precision auto: {resolve('auto')} ({explain()})", flush=True)
    m = train(config)
    print(f"test accuracy {m['test_accuracy']:.4%}  loss {m['test_loss']:.4f}  "
          f"training {m['training_seconds']:.0f} s  -> {config.model_path}")
