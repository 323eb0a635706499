"""`mnist_cnn explore`: the explorer site, one page per unit (`analysis.explore.write_site`)."""

from __future__ import annotations

from mnist_cnn.app.common import (PRECISIONS, add_check_only, add_model_options, check_data,
                                  check_model, model_layers, nonneg_int, positive_int)
from mnist_cnn.config import report_dir
from mnist_cnn.errors import UserError


def add(sub):
    p = sub.add_parser("explore", help="a static site with one page per unit (make explore)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="site folder, replaced whole when the build is done (default "
                        "reports/explorer; fashion: reports/fashion/explorer)")
    p.add_argument("--steps", type=positive_int, default=80, help="OIP gradient steps (default 80)")
    p.add_argument("--starts", type=positive_int, default=5, help="OIPs per unit (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the OIP start images (default 0)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N test images (default all)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="arithmetic of the OIP steps (default auto)")
    add_check_only(p)
    add_model_options(p)
    return p


def check(args):
    """Everything that can be checked before TensorFlow is imported (OUT, the model archive and
    its layer classes, the data file's contents). The model's data set is checked when it is
    loaded."""
    from analysis.explore import check_model_file, check_out

    if args.out is None:
        args.out = report_dir(args.dataset, "explorer")
    check_model(args, allow_missing_default=args.check_only)
    check_data(args)
    check_out(args.out)
    check_model_file(args.model)
    model_layers(args)  # names an unsupported layer class now
    if args.starts > 10:
        raise UserError(f"--starts must be at most 10, got {args.starts}")
    if args.data and not args.check_only:
        from mnist_cnn.data import load_dataset  # NumPy only; verifies the arrays' digests

        args.arrays = load_dataset(args.dataset, args.data)


def run(args):
    from analysis.explore import write_site
    from mnist_cnn.data import load_dataset
    from mnist_cnn.model import load_trained

    # UserError for a missing/corrupt/refused model, or one trained on the other data set
    model = load_trained(args.model, dataset=args.dataset)
    arrays = getattr(args, "arrays", None) or load_dataset(args.dataset, args.data or None)
    _, (x_test, y_test) = arrays
    if args.limit:
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    site = write_site(model, (x_test, y_test), args.out, model_path=args.model, steps=args.steps,
                      starts=args.starts, seed=args.seed, precision=args.precision,
                      dataset=args.dataset, data_source=args.data or "")
    convs = [name for name, layer in site["layers"].items() if len(layer["shape"]) == 3]
    last = convs[-1] if convs else list(site["layers"])[-1]  # conv_3 of the series' network
    check = site["oip_check"][last]
    print(f"test accuracy {site['test_accuracy']:.2%} on {site['test_images']} images; {last}: "
          f"{check['best_beats']}/{check['live']} live maps' OIPs beat their largest test "
          f"activation ({check['start_0_beats']} from start 0 alone, {check['retried']} from a second "
          f"set of starts)")
    print(f"wrote {args.out}/index.html: {site['files']} files, {site['bytes'] / 1e6:.1f} MB, "
          f"in {site['seconds']['total']:.1f} s")
    return 0
