"""The command line: `python -m mnist_cnn COMMAND [options]`, or `mnist-cnn COMMAND` once
installed (the Makefile's targets call it). The only code that imports `analysis`.

Each command is one module here with three functions:

* `add(subparsers)` - its sub-parser and options;
* `check(args)` - everything that can be checked before TensorFlow is imported (None: nothing),
  raising `UserError` (one line, exit status 2);
* `run(args)` - load what it needs and call the library or the analysis API.

Adding a command is a new module mnist_cnn/app/<name>.py with those three functions and its
name in `COMMANDS` below. Arguments are checked once, in `check`; the functions below the
command line take plain values, never a Namespace.
"""

from __future__ import annotations

import importlib
import sys

from mnist_cnn.errors import UserError

# The commands in the order `--help` lists them: module names in mnist_cnn.app.
COMMANDS = ("train", "evaluate", "analyze", "oip", "explore", "predict", "experiment", "info",
            "bench", "concepts")


def build_parser():
    from mnist_cnn.app.common import Parser

    parser = Parser(prog="mnist_cnn", description="Command line of mnist_cnn: train the series' "
                    "CNN (or bring your own model) and look inside it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"mnist_cnn.app.{name}")
        p = module.add(sub)
        p.set_defaults(run=module.run, check=getattr(module, "check", None))
    return parser


def main(argv=None) -> int:
    """Parse, check, then run a command; UserError becomes one line and exit status 2.

    Every command's output folder (`--out` or `--out-dir`, after its check has filled in the
    default) is tried for writing before the work starts (`fileio.check_writable`); a write that
    fails later is one line too (`fileio.WriteError`, or an OSError `fileio.write_error` knows).
    """
    from mnist_cnn.app.common import quiet_tensorflow_import
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
