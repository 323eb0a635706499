"""What every command shares: the parser, argument types, the model and data options, and the
checks made before TensorFlow is imported (each argument is checked once, here)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnist_cnn.config import DEFAULT_MODEL, default_model
from mnist_cnn.data.registry import DATASET_NAMES, class_index, get_dataset
from mnist_cnn.errors import UserError
from mnist_cnn.precision import ALIASES, CHOICES

# --precision of every command: the training's vocabulary, "bfloat16" kept as an alias.
PRECISIONS = (*CHOICES, *ALIASES)


class Parser(argparse.ArgumentParser):
    """argparse, but every error is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# Argument types: each raises ArgumentTypeError with a message that names the problem.

def number(kind, check):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if kind is float and value != value:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        if check == "positive" and not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        if check == "non-negative" and not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        if check == "fraction" and not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


positive_int = number(int, "positive")
nonneg_int = number(int, "non-negative")


def digit(text):
    if text.strip() not in tuple("0123456789"):
        raise argparse.ArgumentTypeError(f"must be a digit 0-9, got {text!r}")
    return int(text)


def dataset_name(text):
    """'fashion', 'Fashion-MNIST' -> 'fashion' (`datasets.get_dataset`)."""
    try:
        return get_dataset(text).name
    except UserError:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; choose from {', '.join(DATASET_NAMES)}") from None


def int_list(text):
    """'0,5,17' -> [0, 5, 17]."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,5,17, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one index")
    return values


def name_list(text):
    """'conv_1, conv_3' -> ['conv_1', 'conv_3'] (checked against the model by the command)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer names, got {text!r}")
    return names


def colormap(text):
    import matplotlib  # no TensorFlow; cheap enough to check the name properly

    if text not in matplotlib.colormaps:
        raise argparse.ArgumentTypeError(f"unknown colormap {text!r}; try viridis, jet, gray, magma")
    return text


def add_dataset_option(parser):
    """`--dataset mnist|fashion` (default mnist). Commands that take it resolve their default
    paths per data set with `config.default_model` and `config.report_dir`."""
    parser.add_argument("--dataset", type=dataset_name, default="mnist", metavar="NAME",
                        help=f"data set: {' or '.join(DATASET_NAMES)} (default mnist); a model "
                             "trained elsewhere is read as one of this data set")


def add_model_options(parser):
    add_dataset_option(parser)
    parser.add_argument("--model", default=None, metavar="PATH",
                        help=f"trained model: the series' network or your own .keras "
                             f"(docs/own-model.md; default {DEFAULT_MODEL}; with --dataset "
                             f"fashion {default_model('fashion')})")
    parser.add_argument("--data", default="", metavar="NPZ",
                        help="explicit Keras-style .npz of the data set")


def add_check_only(parser):
    parser.add_argument("--check-only", action="store_true", help="check the arguments and stop")


def check_model(args, allow_missing_default):
    """A missing model is an error, except the default one that `make` is about to train.

    Fills in the data set's default --model. A model on the other data set is refused after
    TensorFlow is imported (`mnist_cnn.model.load_trained(path, dataset)` reads the file)."""
    if args.model is None:
        args.model = default_model(args.dataset)
    if Path(args.model).is_file():
        return
    if allow_missing_default and args.model == default_model(args.dataset):
        return
    make = "make train" if args.dataset == "mnist" else f"make train DATASET={args.dataset}"
    raise UserError(f"no model at {args.model}; run `{make}` or pass --model PATH")


def model_layers(args):
    """The model's layers as (name, Keras class, channels), read without TensorFlow
    (`network.peek`); the series' table for a default model not trained yet; None when the file
    is no readable archive (loading it says why)."""
    from mnist_cnn.network import peek, series_table

    if not Path(args.model).is_file():
        return series_table()
    return peek(args.model)


def check_layer(table, name, flag, kinds=None):
    """`name` must be a layer of the model (of `kinds`, Keras classes); returns its channels."""
    if table is None:
        return None
    allowed = [(n, c, ch) for n, c, ch in table if kinds is None or c in kinds]
    for n, _, channels in allowed:
        if n == name:
            return channels
    raise UserError(f"{flag}: invalid choice: {name!r} (choose from "
                    f"{', '.join(n for n, _, _ in allowed)})")


def check_data(args):
    if args.data and not Path(args.data).is_file():
        title = get_dataset(getattr(args, "dataset", "mnist")).title
        raise UserError(f"{title} file {args.data} does not exist; check --data")


def parse_class(dataset, text, flag="--digit") -> int:
    """A class given on the command line as its label index: MNIST takes a digit 0-9, other data
    sets an index or a name (`datasets.class_index`: "shirt", "ankle-boot"). UserError (one line
    listing what is valid) otherwise."""
    if get_dataset(dataset).name == "mnist":
        try:
            return digit(text)
        except argparse.ArgumentTypeError as e:
            raise UserError(f"{flag}: {e}") from None
    try:
        return class_index(dataset, text)
    except UserError as e:
        raise UserError(f"{flag}: {e}") from None


def quiet_tensorflow_import():
    """Import TensorFlow and find devices with the C++ start-up chatter (oneDNN, CUDA) held back.

    Those lines are printed before TensorFlow's logging is set up, so TF_CPP_MIN_LOG_LEVEL does
    not reach them; stderr is captured during the import and shown only if the import fails.
    """
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery logs too (cuInit on CPU machines)
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
