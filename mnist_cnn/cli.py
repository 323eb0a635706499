"""Command line: `python -m mnist_cnn COMMAND [options]` (the Makefile's targets call this).

Arguments are parsed and checked here, before TensorFlow is imported, so a typo costs nothing:
bad input gets one line on stderr and exit status 2. The work itself lives in the library
(`mnist_cnn.train`, `mnist_cnn.evaluate`, ...) and in `analysis/`; each command imports it lazily.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from mnist_cnn.config import (DEFAULT_MODEL, EXPERIMENTS, LAYER_SIZES, MAP_LAYERS, RECIPES,
                              TrainConfig, default_model, default_out_dir, fields, report_dir)
from mnist_cnn.datasets import DATASET_NAMES, class_index, get_dataset
from mnist_cnn.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse, but every error is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# Argument types: each raises ArgumentTypeError with a message that names the problem.

def _number(kind, check):
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


positive_int = _number(int, "positive")
nonneg_int = _number(int, "non-negative")


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


def layer_list(text):
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in MAP_LAYERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown layer {unknown[0] if unknown else text!r}; choose from {', '.join(MAP_LAYERS)}")
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
                        help=f"data set: {' or '.join(DATASET_NAMES)} (default mnist)")


def _model_option(parser):
    add_dataset_option(parser)
    parser.add_argument("--model", default=None, metavar="PATH",
                        help=f"trained model (default {DEFAULT_MODEL}; with --dataset fashion "
                             f"{default_model('fashion')})")
    parser.add_argument("--data", default="", metavar="NPZ",
                        help="explicit Keras-style .npz of the data set")


def _check_model(args, allow_missing_default):
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


def _check_data(args):
    if args.data and not Path(args.data).is_file():
        title = get_dataset(getattr(args, "dataset", "mnist")).title
        raise UserError(f"{title} file {args.data} does not exist; check --data")


# Commands: each has add_<name>(subparsers) and run_<name>(args).

def add_train(sub):
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
            parse = _number(kind, meta["check"]) if kind is not str else str
            default = (f"default {f.default!r}" if f.default is not None else "default " +
                       ", ".join(f"{d} {RECIPES[d][f.name]!r}" for d in RECIPES))
            p.add_argument(flag, type=parse, default=f.default, help=f"{meta['help']} ({default})")
    p.set_defaults(run=run_train, check=check_train)


def check_train(args):
    """Fail fast, before TensorFlow: bad data file, or another training writing into --out-dir."""
    from mnist_cnn.fileio import exclusive_lock

    _check_data(args)
    args.out_dir = args.out_dir or default_out_dir(args.dataset)
    with exclusive_lock(args.out_dir):  # released at once; train() holds it for the whole run
        pass


def run_train(args):
    from mnist_cnn.train import train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    if config.train_limit == 0 and config.val_size >= 60000:
        raise UserError("--val-size must leave training images (< 60000)")
    m = train(config)
    print(f"test accuracy {m['test_accuracy']:.4%}  loss {m['test_loss']:.4f}  "
          f"training {m['training_seconds']:.0f} s  -> {config.model_path}")


def add_evaluate(sub):
    p = sub.add_parser("evaluate", help="accuracy and confusion matrix of a trained model")
    _model_option(p)
    p.set_defaults(run=run_evaluate, check=lambda a: (_check_model(a, False), _check_data(a)))


def run_evaluate(args):
    from mnist_cnn.data import load_dataset, to_input
    from mnist_cnn.evaluate import evaluate, format_confusion, top_confusions
    from mnist_cnn.model import load_trained

    info = get_dataset(args.dataset)
    model = load_trained(args.model, dataset=info.name)
    _, (x_test, y_test) = load_dataset(info.name, args.data or None)
    r = evaluate(model, to_input(x_test), y_test)
    print(f"{args.model}: test accuracy {r['accuracy']:.4%} ({int(r['confusion_matrix'].trace())}"
          f"/{len(y_test)}), loss {r['loss']:.4f}")
    print(format_confusion(r["confusion_matrix"]))
    if info.name != "mnist":
        print("classes: " + ", ".join(f"{i} {name}" for i, name in enumerate(info.class_names)))
    print("most confused (true -> predicted: count): " + ", ".join(
        f"{info.class_name(t)}->{info.class_name(p)}: {n}"
        for t, p, n in top_confusions(r["confusion_matrix"])))


def add_analyze(sub):
    p = sub.add_parser("analyze", help="feature maps, class comparison and report for one digit "
                                       "(or Fashion-MNIST class)")
    p.add_argument("--digit", metavar="CLASS",
                   help="the digit to study (0-9); with --dataset fashion a class index or name "
                        "(required, or --class)")
    p.add_argument("--class", dest="class_", metavar="CLASS",
                   help="alias of --digit: a class index 0-9, or for fashion a name (--class shirt)")
    p.add_argument("--contrast", default=None, metavar="CLASS",
                   help="class to compare with, index or name (default: the one most often "
                        "confused with --digit)")
    p.add_argument("--samples", type=positive_int, default=3, help="images per class drawn (default 3)")
    p.add_argument("--cmap", type=colormap, default="viridis", help="colormap (default viridis)")
    p.add_argument("--layers", type=layer_list, default=list(MAP_LAYERS),
                   help=f"comma-separated layers to draw (default {','.join(MAP_LAYERS)})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default reports/digit-D; fashion: reports/fashion/class-D-name)")
    p.add_argument("--check-only", action="store_true", help="check the arguments and stop")
    _model_option(p)
    p.set_defaults(run=run_analyze, check=check_analyze)


def analyze_out_dir(dataset, label: int) -> str:
    """Default report folder: reports/digit-4 (MNIST), reports/fashion/class-6-shirt."""
    info = get_dataset(dataset)
    if info.name == "mnist":
        return report_dir(info.name, f"digit-{label}")
    slug = "-".join(w for w in re.split(r"[^a-z0-9]+", info.class_name(label).lower()) if w)
    return report_dir(info.name, f"class-{label}-{slug}")


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


def check_analyze(args):
    """Turn --digit/--class and --contrast (indices or names) into label indices."""
    given = getattr(args, "class_", None)
    if args.digit is None and given is None:
        raise UserError("the following arguments are required: --digit (or its alias --class)")
    flag = "--digit" if given is None else "--class"
    label = parse_class(args.dataset, args.digit if given is None else given, flag)
    if args.digit is not None and given is not None and parse_class(args.dataset, args.digit) != label:
        raise UserError(f"--digit {args.digit} and --class {given} disagree; give one of them")
    args.digit = label
    args.out = args.out or analyze_out_dir(args.dataset, label)
    if args.contrast is not None:
        args.contrast = parse_class(args.dataset, args.contrast, "--contrast")
    noun = get_dataset(args.dataset).class_noun
    if args.contrast is not None and args.contrast == args.digit:
        raise UserError(f"--contrast must differ from --digit ({args.digit}); pick another {noun}")
    if args.samples > 20:
        raise UserError(f"--samples must be at most 20, got {args.samples}")
    _check_model(args, allow_missing_default=args.check_only)
    _check_data(args)


def run_analyze(args):
    from analysis.report import run_analyze as run

    return run(args)


def add_oip(sub):
    p = sub.add_parser("oip", help="gradient-ascent input patterns (OIPs) for the maps of a layer")
    p.add_argument("--layer", required=True, choices=list(LAYER_SIZES), metavar="LAYER",
                   help=f"one of {', '.join(LAYER_SIZES)}")
    p.add_argument("--steps", type=positive_int, default=200, help="gradient steps (default 200)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the start images (default 0)")
    p.add_argument("--maps", type=int_list, default=None, help="map indices, e.g. 0,5,17 (default all)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default reports/oip; fashion: reports/fashion/oip)")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="arithmetic of the gradient steps (default auto: bfloat16 where the CPU "
                        "has it; activations are always measured in float32)")
    p.add_argument("--check-only", action="store_true", help="check the arguments and stop")
    _model_option(p)
    p.set_defaults(run=run_oip, check=check_oip)


def check_oip(args):
    if args.out is None:
        args.out = report_dir(args.dataset, "oip")
    size = LAYER_SIZES[args.layer]
    bad = [m for m in args.maps or [] if not 0 <= m < size]
    if bad:
        raise UserError(f"--maps: index {bad[0]} is out of range for {args.layer} "
                        f"(it has {size} maps: 0-{size - 1})")
    _check_model(args, allow_missing_default=args.check_only)
    _check_data(args)


def run_oip(args):
    from analysis.oip import run_oip_command

    return run_oip_command(args)


def add_explore(sub):
    p = sub.add_parser("explore", help="a static site with one page per unit (make explore)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="site folder, replaced whole when the build is done (default "
                        "reports/explorer; fashion: reports/fashion/explorer)")
    p.add_argument("--steps", type=positive_int, default=80, help="OIP gradient steps (default 80)")
    p.add_argument("--starts", type=positive_int, default=5, help="OIPs per unit (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the OIP start images (default 0)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N test images (default all)")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="arithmetic of the OIP steps (default auto)")
    p.add_argument("--check-only", action="store_true", help="check the arguments and stop")
    _model_option(p)
    p.set_defaults(run=run_explore, check=check_explore)


def check_explore(args):
    from analysis.explore import check_args

    if args.out is None:
        args.out = report_dir(args.dataset, "explorer")
    _check_model(args, allow_missing_default=args.check_only)
    _check_data(args)
    check_args(args)


def run_explore(args):
    from analysis.explore import run_explore as run

    return run(args)


def add_experiment(sub):
    p = sub.add_parser("experiment", help="the filter-learning experiments (see README)")
    p.add_argument("name", choices=[*EXPERIMENTS, "all"], metavar="NAME",
                   help=f"one of {', '.join(EXPERIMENTS)}, or all")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="reports/experiments", metavar="DIR", help="output folder")
    p.add_argument("--data", default="", metavar="NPZ", help="explicit Keras-style mnist.npz")
    p.set_defaults(run=run_experiment, check=_check_data)


def run_experiment(args):
    from analysis.experiments import run_experiments

    return run_experiments(args)


def add_info(sub):
    p = sub.add_parser("info", help="layers, shapes, parameters, receptive fields")
    p.set_defaults(run=run_info, check=None)


def run_info(args):
    from mnist_cnn.reference import print_info

    return print_info()


def add_bench(sub):
    p = sub.add_parser("bench", help="speed and accuracy benchmark -> bench/results.json")
    p.add_argument("--seeds", type=positive_int, default=3, help="training seeds (default 3)")
    p.add_argument("--only", default="", help="comma-separated sections to run (default all)")
    p.set_defaults(run=run_bench, check=check_bench)


def check_bench(args):
    from mnist_cnn.bench import RESULTS

    args.out = str(RESULTS.parent)  # tried for writing by main, like every command's --out


def run_bench(args):
    from mnist_cnn.bench import run_bench as run

    return run(args)


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


def build_parser() -> Parser:
    parser = Parser(prog="mnist_cnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for add in (add_train, add_evaluate, add_analyze, add_oip, add_explore, add_experiment,
                add_info, add_bench):
        add(sub)
    return parser


def main(argv=None) -> int:
    """Parse, check, then run a command; UserError becomes one line and exit status 2.

    Every command's output folder (`--out` or `--out-dir`, after its check has filled in the
    default) is tried for writing before the work starts (`fileio.check_writable`); a write that
    fails later is one line too (`fileio.WriteError`, or an OSError `fileio.write_error` knows).
    """
    from mnist_cnn.fileio import check_writable, write_error

    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"mnist_cnn {args.command}"
    try:
        if args.check:
            args.check(args)
        for folder in {getattr(args, "out_dir", None), getattr(args, "out", None)} - {None, ""}:
            check_writable(folder)
        if getattr(args, "check_only", False):
            return 0
        quiet_tensorflow_import()
        return args.run(args) or 0
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a write outside fileio's helpers (TensorBoard logs, a lock file)
        if (error := write_error(e)) is None:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; `make train` resumes from the last finished epoch"
              if args.command == "train" else f"{prog}: interrupted", file=sys.stderr)
        return 130
