"""`mnist_cnn bench`: speed and accuracy benchmark -> bench/results.json (`mnist_cnn.bench`)."""

from __future__ import annotations

from mnist_cnn.app.common import positive_int


def add(sub):
    p = sub.add_parser("bench", help="speed and accuracy benchmark -> bench/results.json")
    p.add_argument("--seeds", type=positive_int, default=3, help="training seeds (default 3)")
    p.add_argument("--only", default="", help="comma-separated sections to run (default all)")
    return p


def check(args):
    from mnist_cnn.bench import RESULTS, SECTION_NAMES
    from mnist_cnn.errors import UserError

    args.out = str(RESULTS.parent)  # tried for writing by main, like every command's --out
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTION_NAMES)
    unknown = [s for s in args.sections if s not in SECTION_NAMES]
    if unknown:
        raise UserError(f"unknown bench section {unknown[0]!r}; choose from {', '.join(SECTION_NAMES)}")


def run(args):
    from mnist_cnn.bench import run_bench

    return run_bench(args.sections, seeds=args.seeds)
