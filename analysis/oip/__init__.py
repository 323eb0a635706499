"""OIPs ("original input patterns"): input images that make one map of the CNN respond strongly.

Gradient ascent on the input, shaped like Lucid's optvis for a 28x28 network, one module per
piece:

* `objectives` - small functions of the target layer's output that return one number per
  batch item (`map_mean`, `map_position`, `unit`; item i of a batch targets map `maps[i]`),
  and the weighted penalties (total variation, L2);
* `param` - how free parameters become an image in [0, 1] (`clip`, `sigmoid`, `fourier`, a
  1/f-scaled spectrum behind a sigmoid), and the start images;
* `ascent` - one optimisation loop (`Ascent`, its steps compiled with `tf.function`, with
  jitter by a pixel or two): all maps of a layer are optimised at once, one image per map, with
  per-image normalised gradient steps, in bfloat16 where the CPU has it;
* `compute` - whole layers (`compute_oips`, compared with the maxima on real images), and for
  the digit report the class image (input maximising the logit of a digit) and "pattern
  carving" (a real image nudged for a few steps towards what one map reacts to);
* `plots` - the figures.

The network is cut at the target layer (`conv_1` OIPs never run `conv_3`) and the cut ends at
the layer's *pre-activation*. A map whose ReLU output is zero everywhere has no gradient, so
each image follows its pre-activation until the map turns positive and its activation from then
on; on the default model that gets every `conv_3` map that is live on the test set off zero.
Start images are random fluctuations on several length scales (wavelengths 28, 14, 7 and 4 px,
as in the series) drawn from `(seed, map)`, so the OIP of map i does not depend on which other
maps share its batch.

This package's own entry is `make oip` (`run_oip_command`); the digit report's OIP section is
`analysis.report.sections.oip_section`, the benchmark `mnist_cnn.bench.bench_oip`. Importing the
package is cheap: TensorFlow comes with the submodules.
"""

from __future__ import annotations


def run_oip_command(args) -> int:
    """`mnist_cnn oip`: write <out>/<layer>.png and <out>/<layer>.npz, print a summary."""
    from dataclasses import replace
    from pathlib import Path

    from analysis.oip.ascent import OIPConfig
    from analysis.oip.compute import compute_oips, oip_quality
    from analysis.oip.plots import plot_oips
    from mnist_cnn.config import report_dir
    from mnist_cnn.data import load_dataset, to_input
    from mnist_cnn.fileio import atomic_group, save_figure, save_npz
    from mnist_cnn.model import load_trained

    dataset = getattr(args, "dataset", "mnist")
    model = load_trained(args.model, dataset=dataset)  # refuses a model of the other data set
    _, (x_test, _) = load_dataset(dataset, args.data or None)
    config = replace(OIPConfig(), steps=args.steps, precision=getattr(args, "precision", "auto"))
    result = compute_oips(model, args.layer, args.maps, config, args.seed, to_input(x_test))
    out = Path(args.out or report_dir(dataset, "oip"))
    with atomic_group() as stage:  # the arrays and their figure: both replaced, or neither
        save_npz(stage(out / f"{args.layer}.npz"), images=result["images"], maps=result["maps"],
                 activation=result["activation"], data_max=result["data_max"],
                 dead=result["dead"], start_activation=result["start_activation"])
        save_figure(plot_oips(result["images"], result["maps"], result["activation"], args.layer,
                              result["data_max"]), stage(out / f"{args.layer}.png"))
    q = oip_quality(result)
    print(f"{args.layer}: {q['maps']} OIPs, {args.steps} steps in {result['seconds']:.1f} s "
          f"({result['precision']}); above the largest test-image activation for "
          f"{q['above_data_max']}/{q['active_on_data']} maps active on the test set; "
          f"{q['dead_on_data']} dead on the whole test set; {q['zero_at_start']} at zero at the "
          f"start, {q['zero_at_end']} at the end")
    if q["dead_on_data"]:
        print("dead on the test set: " + ", ".join(str(int(m)) for m in result["maps"][result["dead"]]))
    print(f"wrote {out / (args.layer + '.png')} and {out / (args.layer + '.npz')}")
    return 0
