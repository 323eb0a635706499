"""`mnist_cnn experiment NAME`: the filter-learning experiments (`analysis.experiments`)."""

from __future__ import annotations

import time

from mnist_cnn.app.common import check_data, nonneg_int
from mnist_cnn.config import EXPERIMENTS


def add(sub):
    p = sub.add_parser("experiment", help="the filter-learning experiments (see README)")
    p.add_argument("name", choices=[*EXPERIMENTS, "all"], metavar="NAME",
                   help=f"one of {', '.join(EXPERIMENTS)}, or all")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="reports/experiments", metavar="DIR", help="output folder")
    p.add_argument("--data", default="", metavar="NPZ", help="explicit Keras-style mnist.npz")
    return p


check = check_data


def run(args):
    from analysis.experiments import MODULES, run_one

    names = list(MODULES) if args.name == "all" else [args.name]
    started = time.perf_counter()
    for name in names:
        run_one(name, args.out, args.seed, args.data)
    if len(names) > 1:
        print(f"all experiments: {time.perf_counter() - started:.0f} s")
    return 0
