"""`mnist_cnn concepts`: which human concepts the network uses (issue #26): probes against a
random-weights control, TCAV with Holm-corrected p-values, unit-concept correlations and a
causal check (`analysis.report.concepts.write_concepts`; docs/concepts.md)."""

from __future__ import annotations

from mnist_cnn.app.common import (add_check_only, add_model_options, check_data, check_model,
                                  positive_int)
from mnist_cnn.config import report_dir
from mnist_cnn.errors import UserError


def add(sub):
    p = sub.add_parser("concepts", help="which human concepts (stroke thickness, loops, slant...) "
                                        "the layers carry: probes, TCAV, units, a causal check")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default reports/concepts; fashion: reports/fashion/concepts)")
    p.add_argument("--images", type=positive_int, default=None, metavar="N",
                   help="use at most N training and N test images (default all; quicker, rougher)")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N",
                   help="draws of the TCAV concept images, for the spread (default 3)")
    p.add_argument("--permutations", type=positive_int, default=10000, metavar="N",
                   help="label permutations in the TCAV null (default 10000; the smallest p is 1/(N+1))")
    add_check_only(p)
    add_model_options(p)
    return p


def check(args):
    """Default --out per data set; the sizes; the model and data files (no TensorFlow)."""
    args.out = args.out or report_dir(args.dataset, "concepts")  # tried for writing by main
    if args.images is not None and args.images < 100:
        raise UserError(f"--images must be at least 100 (a probe needs held-out images), "
                        f"got {args.images}")
    if args.permutations < 20:
        raise UserError(f"--permutations must be at least 20, got {args.permutations}")
    check_model(args, allow_missing_default=args.check_only)
    check_data(args)


def run(args):
    from analysis.report.concepts import write_concepts
    from mnist_cnn.data import load_dataset
    from mnist_cnn.data.registry import get_dataset
    from mnist_cnn.model import load_trained

    info = get_dataset(args.dataset)
    model = load_trained(args.model, dataset=info.name)
    data = load_dataset(info.name, args.data or None)
    options = {"seeds": tuple(range(args.seeds)), "permutations": args.permutations}
    if args.images is not None:  # small runs: sets and draws that fit the few images
        n = args.images
        options.update(images=n, concept_pool=n, per_set=max(10, min(150, n // 8)),
                       per_class=max(10, min(300, n // 10)), draws=min(10, max(3, n // 100)))
    result = write_concepts(model, data, args.out, model_path=args.model, dataset=info.name,
                            **options)
    significant = sum(r["significant"] for r in result["tcav"])
    print(f"{len(result['probes'])} probes, {len(result['tcav'])} TCAV tests "
          f"({significant} significant after Holm)")
    if result["causal"]:
        c = result["causal"]["with loops"]
        print(f"zeroing {result['causal']['k']} loop units of {result['causal']['layer']}: "
              f"accuracy on digits with loops {c['base']:.2%} -> {c['loop_units']:.2%} "
              f"(random units: {c['random_mean']:.2%})")
    print(f"wrote {args.out}/index.html ({len(result['files'])} files) in "
          f"{result['seconds']['total']:.1f} s")
    return 0
