"""`mnist_cnn analyze`: the report on one class (`analysis.report.write_report`)."""

from __future__ import annotations

from mnist_cnn.app.common import (add_check_only, add_model_options, check_data, check_layer,
                                  check_model, colormap, model_layers, name_list, parse_class,
                                  positive_int)
from mnist_cnn.config import analyze_out_dir, default_model
from mnist_cnn.series import MAP_LAYERS
from mnist_cnn.data.registry import get_dataset
from mnist_cnn.errors import UserError

MAP_CLASSES = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "BatchNormalization", "Dropout")


def add(sub):
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
    p.add_argument("--layers", type=name_list, default=None,
                   help=f"comma-separated map layers to draw (default every one; the series' "
                        f"network: {','.join(MAP_LAYERS)})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default reports/digit-D; fashion: reports/fashion/class-D-name)")
    add_check_only(p)
    add_model_options(p)
    return p


def check(args):
    """Turn --digit/--class and --contrast (indices or names) into label indices; check the
    layers against the model's (read without TensorFlow)."""
    given = getattr(args, "class_", None)
    if args.digit is None and given is None:
        raise UserError("the following arguments are required: --digit (or its alias --class)")
    flag = "--digit" if given is None else "--class"
    label = parse_class(args.dataset, args.digit if given is None else given, flag)
    if args.digit is not None and given is not None and parse_class(args.dataset, args.digit) != label:
        raise UserError(f"--digit {args.digit} and --class {given} disagree; give one of them")
    args.digit = label
    args.out = args.out or analyze_out_dir(args.dataset, label)  # tried for writing by main
    if args.contrast is not None:
        args.contrast = parse_class(args.dataset, args.contrast, "--contrast")
    noun = get_dataset(args.dataset).class_noun
    if args.contrast is not None and args.contrast == args.digit:
        raise UserError(f"--contrast must differ from --digit ({args.digit}); pick another {noun}")
    if args.samples > 20:
        raise UserError(f"--samples must be at most 20, got {args.samples}")
    if args.model is None:
        args.model = default_model(args.dataset)
    table = model_layers(args)
    for name in args.layers or ():
        try:
            check_layer(table, name, "--layers", MAP_CLASSES)
        except UserError:
            names = [n for n, c, _ in table if c in MAP_CLASSES]
            raise UserError(f"unknown layer {name!r}; choose from {', '.join(names)}") from None
    check_model(args, allow_missing_default=args.check_only)
    check_data(args)


def run(args):
    from analysis.report import write_report
    from mnist_cnn.data import load_dataset
    from mnist_cnn.model import load_trained

    info = get_dataset(args.dataset)
    out = args.out  # check filled in the default
    # UserError for a missing/corrupt/refused model, or one trained on the other data set
    model = load_trained(args.model, dataset=info.name)
    _, test = load_dataset(info.name, args.data or None)
    summary = write_report(model, test, args.digit, out, model_path=args.model,
                           contrast=args.contrast, samples=args.samples, cmap=args.cmap,
                           layers=args.layers, dataset=info.name)
    from mnist_cnn.network import describe

    name = info.class_label
    last = describe(model).last_conv.name
    print(f"{info.class_noun} {name(summary['digit'])} vs {name(summary['contrast'])} "
          f"({summary['contrast_source']}); test accuracy {summary['test_accuracy']:.4%}")
    if summary.get("probe"):
        print(f"probe on {last}: {summary['probe']['all_features']:.2%} cross-validated accuracy")
    if summary.get("ablation"):
        row = summary["ablation"]["rows"][-1]
        print(f"top {row['k']} {last} maps zeroed: accuracy {row['ranked_accuracy_a']:.2%} on "
              f"{name(summary['digit'])}, {row['ranked_accuracy_b']:.2%} on "
              f"{name(summary['contrast'])} "
              f"(random maps: {row['random_accuracy_a_mean']:.2%}, "
              f"{row['random_accuracy_b_mean']:.2%})")
    print(f"wrote {out}/index.html ({len(summary['files'])} files) in {summary['seconds']:.1f} s")
    return 0
