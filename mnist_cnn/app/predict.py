"""`mnist_cnn predict IMAGE...`: what the network says about your own images, and why
(`analysis.predict.predict_images`; docs/predict.md)."""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.app.common import (add_check_only, add_model_options, check_data, check_model,
                                  model_layers, nonneg_int, number, parse_class, positive_int)
from mnist_cnn.config import report_dir
from mnist_cnn.errors import UserError


def add(sub):
    p = sub.add_parser("predict", help="what the network says about your own image(s), and why "
                                       "-> reports/predict/<name>/index.html")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="PNG, JPEG, BMP, GIF or WebP files of one digit each (any size, colour or "
                        "grey, dark ink on light paper or light on dark)")
    p.add_argument("--contrast", default=None, metavar="CLASS",
                   help="explain the answer rather than CLASS (default: the runner-up)")
    p.add_argument("--threshold", type=number(float, "fraction"), default=None,
                   help="ink below this fraction of the strongest ink counts as paper "
                        "(default 0.2)")
    p.add_argument("--top", type=positive_int, default=8,
                   help="most active maps of the last conv layer shown (default 8)")
    p.add_argument("--oip-steps", type=nonneg_int, default=80,
                   help="gradient steps of their OIPs when no explorer site of the model exists "
                        "(each map's computed once per model, then cached; default 80; 0: none)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="reports folder (default reports/predict; fashion: reports/fashion/predict)")
    add_check_only(p)
    add_model_options(p)
    return p


def check(args):
    """Read every image (Pillow, no TensorFlow): any bad one stops the command before anything
    is written."""
    from mnist_cnn.images import NOISE_THRESHOLD, load_ink

    if args.out is None:
        args.out = report_dir(args.dataset, "predict")
    if args.contrast is not None:
        args.contrast = parse_class(args.dataset, args.contrast, "--contrast")
    threshold = NOISE_THRESHOLD if args.threshold is None else args.threshold
    stems = {}
    for path in args.images:
        stem = Path(path).stem
        if stem in stems and stems[stem] != path:
            raise UserError(f"{stems[stem]} and {path} would both write {args.out}/{stem}/; "
                            "predict them separately with --out")
        stems[stem] = path
    args.inks = [load_ink(path, threshold) for path in args.images]
    check_model(args, allow_missing_default=args.check_only)
    check_data(args)
    model_layers(args)  # names an unsupported layer class now


def run(args):
    from analysis.predict import predict_images
    from mnist_cnn.data.registry import get_dataset
    from mnist_cnn.model import load_trained

    dataset = get_dataset(args.dataset).name
    model = load_trained(args.model, dataset=dataset)  # refuses another class count
    for r in predict_images(model, args.model, list(zip(args.images, args.inks)), args.out,
                            dataset=dataset, data=args.data, contrast=args.contrast,
                            top=args.top, oip_steps=args.oip_steps):
        (first, p1), (second, p2), (third, p3) = r["answer"]
        names = r["names"]
        print(f"{r['path']}: {names[first]} {p1:.1%} (then {names[second]} {p2:.1%}, "
              f"{names[third]} {p3:.1%}); read as {r['polarity']}; faithful maps: "
              f"{', '.join(r['faithful']) or 'none'} -> {r['folder']}/index.html")
    return 0
