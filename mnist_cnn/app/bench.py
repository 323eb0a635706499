"""`mnist_cnn bench`: speed and accuracy benchmark -> bench/results.json (`mnist_cnn.bench`)."""

from __future__ import annotations

from mnist_cnn.app.common import positive_int


def add(sub):
    p = sub.add_parser("bench", help="speed and accuracy benchmark -> bench/results.json")
    p.add_argument("--seeds", type=positive_int, default=3, help="training seeds (default 3)")
    p.add_argument("--only", default="", help="comma-separated sections to run (default all)")
    return p


def check(args):
    from mnist_cnn.bench import RESULTS, chosen_sections

    args.out = str(RESULTS.parent)  # tried for writing by main, like every command's --out
    args.sections = chosen_sections([s.strip() for s in args.only.split(",") if s.strip()])


def run(args):
    from mnist_cnn.bench import run_bench

    return run_bench(args.sections, seeds=args.seeds)
