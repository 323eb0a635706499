"""`mnist_cnn info [--model PATH]`: layers, shapes, parameters and receptive fields of the series'
network, or of a saved model (read by `mnist_cnn.network.describe`)."""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.errors import UserError


def add(sub):
    p = sub.add_parser("info", help="layers, shapes, parameters, receptive fields")
    p.add_argument("--model", default=None, metavar="PATH",
                   help="a saved .keras model (default: the series' network, untrained)")
    return p


def check(args):
    if args.model is not None and not Path(args.model).is_file():
        raise UserError(f"no model at {args.model}; pass --model PATH of a .keras file")
    if args.model is not None:
        from mnist_cnn.network import peek

        peek(args.model)  # names an unsupported layer class before TensorFlow


def run(args):
    from mnist_cnn.model import load_trained
    from mnist_cnn.numpy_reference import print_info

    return print_info(None if args.model is None else load_trained(args.model))
