"""`mnist_cnn oip`: OIPs of one layer's maps (`analysis.oip.write_oips`)."""

from __future__ import annotations

from mnist_cnn.app.common import (add_check_only, add_model_options, check_data, check_layer,
                                  check_model, int_list, model_layers, nonneg_int, positive_int)
from mnist_cnn.config import default_model, report_dir
from mnist_cnn.series import TARGET_LAYERS
from mnist_cnn.errors import UserError
from mnist_cnn.app.common import PRECISIONS

TARGET_CLASSES = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "BatchNormalization", "Dropout",
                  "Dense")


def add(sub):
    p = sub.add_parser("oip", help="gradient-ascent input patterns (OIPs) for the maps of a layer")
    p.add_argument("--layer", required=True, metavar="LAYER",
                   help=f"a map or dense layer of the model (the series' network: "
                        f"{', '.join(TARGET_LAYERS)})")
    p.add_argument("--steps", type=positive_int, default=200, help="gradient steps (default 200)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the start images (default 0)")
    p.add_argument("--maps", type=int_list, default=None, help="map indices, e.g. 0,5,17 (default all)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default reports/oip; fashion: reports/fashion/oip)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="arithmetic of the gradient steps (default auto: mixed_bfloat16 where the "
                        "CPU has it; activations are always measured in float32)")
    add_check_only(p)
    add_model_options(p)
    return p


def check(args):
    if args.out is None:
        args.out = report_dir(args.dataset, "oip")
    if args.model is None:
        args.model = default_model(args.dataset)
    table = model_layers(args)
    # Flatten and global pools are not targets: a map's or unit's value is read before them.
    size = check_layer(table, args.layer, "--layer", TARGET_CLASSES)
    bad = [m for m in args.maps or [] if size is not None and not 0 <= m < size]
    if bad:
        raise UserError(f"--maps: index {bad[0]} is out of range for {args.layer} "
                        f"(it has {size} maps: 0-{size - 1})")
    check_model(args, allow_missing_default=args.check_only)
    check_data(args)


def run(args):
    from analysis.oip import write_oips
    from mnist_cnn.data import load_dataset, to_input
    from mnist_cnn.model import load_trained

    model = load_trained(args.model, dataset=args.dataset)  # refuses a model of the other data set
    _, (x_test, _) = load_dataset(args.dataset, args.data or None)
    result = write_oips(model, args.layer, args.out, to_input(x_test), args.maps, args.steps,
                        args.seed, args.precision)
    q = result["quality"]
    print(f"{args.layer}: {q['maps']} OIPs, {args.steps} steps in {result['seconds']:.1f} s "
          f"({result['precision']}); above the largest test-image activation for "
          f"{q['above_data_max']}/{q['active_on_data']} maps active on the test set; "
          f"{q['dead_on_data']} dead on the whole test set; {q['zero_at_start']} at zero at the "
          f"start, {q['zero_at_end']} at the end")
    if q["dead_on_data"]:
        print("dead on the test set: " + ", ".join(str(int(m)) for m in result["maps"][result["dead"]]))
    npz, png = result["files"]
    print(f"wrote {png} and {npz}")
    return 0
