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

This package's own entry is `make oip` (`write_oips`); the digit report's OIP section is
`analysis.report.sections.oip_section`, the benchmark `mnist_cnn.bench.bench_oip`. Importing the
package is cheap: TensorFlow comes with the submodules.
"""

from __future__ import annotations


def write_oips(model, layer: str, out, x_data=None, maps=None, steps: int = 200, seed: int = 0,
               precision: str = "auto", verbose: int = 1) -> dict:
    """OIPs of one layer's maps written as <out>/<layer>.png and <out>/<layer>.npz.

    Parameters
    ----------
    model : keras.Model, e.g. `mnist_cnn.load_model(path)`.
    layer : str, a map or dense layer of the model.
    out : folder (created if missing).
    x_data : float32 (M, 28, 28, 1) real images for the comparison (`data_max`), or None.
    maps, steps, seed, precision : see `compute.compute_oips` and `ascent.OIPConfig`.

    Returns
    -------
    dict, `compute_oips`'s result plus "quality" (`oip_quality`) and "files".
    """
    from dataclasses import replace
    from pathlib import Path

    from analysis.oip.ascent import OIPConfig
    from analysis.oip.compute import compute_oips, oip_quality
    from analysis.oip.plots import plot_oips
    from mnist_cnn.fileio import atomic_group, save_figure, save_npz

    config = replace(OIPConfig(), steps=steps, precision=precision)
    result = compute_oips(model, layer, maps, config, seed, x_data, verbose=verbose)
    out = Path(out)
    files = [out / f"{layer}.npz", out / f"{layer}.png"]
    with atomic_group() as stage:  # the arrays and their figure: both replaced, or neither
        save_npz(stage(files[0]), images=result["images"], maps=result["maps"],
                 activation=result["activation"], data_max=result["data_max"],
                 dead=result["dead"], start_activation=result["start_activation"])
        save_figure(plot_oips(result["images"], result["maps"], result["activation"], layer,
                              result["data_max"], dead=result["dead"]), stage(files[1]))
    return {**result, "quality": oip_quality(result), "files": files}
