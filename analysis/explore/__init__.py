"""`make explore`: a static site with one page per unit of the network (304 units).

Modules: `compute` (the numbers, arrays in and out), `images` (PNGs from arrays, inline SVG),
`render` (the HTML pages and JSON), `build` (compute, then render). This file holds the command's
argument checks, which import no TensorFlow, and its entry point `run_explore`.

`--dataset fashion` builds the site of a Fashion-MNIST model (default folder
reports/fashion/explorer, `config.report_dir`); its pages name the classes ("6 (Shirt)").
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from mnist_cnn.errors import UserError


def check_model_file(path) -> None:
    """A .keras model must be a zip archive holding config.json (checked without TensorFlow)."""
    path = Path(path)
    if path.suffix != ".keras" or not path.is_file():
        return  # missing files are reported by the caller; other formats by Keras itself
    try:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise UserError(f"model {path} is not a Keras model archive (no config.json inside)")
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f"model {path} is not a Keras model archive ({type(err).__name__})") from None


def is_site(folder: Path) -> bool:
    """Whether `folder` holds an explorer site written by this command (safe to replace)."""
    try:
        return json.loads((folder / "site.json").read_text()).get("generator") == "mnist_cnn explore"
    except (OSError, ValueError, AttributeError):
        return False


def check_out(out) -> None:
    """OUT must be a new folder, an empty one, or an earlier explorer site: the build replaces
    it whole, so anything else (a file, a folder with other contents) is refused."""
    out = Path(out)
    if not str(out).strip():
        raise UserError("--out is empty; give a folder such as reports/explorer")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UserError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not is_site(out):
            raise UserError(f"--out {out} is a folder with other contents; the site replaces its "
                            "folder whole, so give a new or empty folder")
        if out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
            raise UserError(f"--out {out} is the current folder or above it; give a subfolder")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: cannot write in {parent}")


def check_args(args) -> None:
    """Everything that can be checked before TensorFlow is imported (OUT, the model archive,
    the data file's contents). The model's data set is checked when it is loaded."""
    check_out(args.out)
    check_model_file(args.model)
    if args.starts > 10:
        raise UserError(f"--starts must be at most 10, got {args.starts}")
    if args.data and not getattr(args, "check_only", False):
        from mnist_cnn.data import load_dataset  # NumPy only; verifies the arrays' digests

        args.arrays = load_dataset(args.dataset, args.data)


def run_explore(args) -> int:
    """CLI entry: build the site in a temporary folder that replaces OUT only when complete."""
    from analysis.explore.build import build_site
    from mnist_cnn.data import load_dataset
    from mnist_cnn.fileio import atomic_dir
    from mnist_cnn.model import load_trained

    # UserError for a missing/corrupt/foreign model, or one trained on the other data set
    model = load_trained(args.model, dataset=args.dataset)
    arrays = getattr(args, "arrays", None) or load_dataset(args.dataset, args.data or None)
    _, (x_test, y_test) = arrays
    if args.limit:
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        site = build_site(model, args.model, (x_test, y_test), tmp, steps=args.steps,
                          starts=args.starts, seed=args.seed, precision=args.precision,
                          data_source=args.data or "", dataset=args.dataset)
    check = site["oip_check"]["conv_3"]
    print(f"test accuracy {site['test_accuracy']:.2%} on {site['test_images']} images; conv_3: "
          f"{check['best_beats']}/{check['live']} live maps' OIPs beat their largest test "
          f"activation ({check['start_0_beats']} from start 0 alone)")
    print(f"wrote {out}/index.html: {site['files']} files, {site['bytes'] / 1e6:.1f} MB, "
          f"in {site['seconds']['total']:.1f} s")
    return 0
