"""Analyses of a trained CNN (the series' network or any model `mnist_cnn.describe` accepts),
built on `mnist_cnn` (which imports this package only from its command line, `mnist_cnn.app`,
and `mnist_cnn.bench`).

Shared modules: `feature_maps` (the maps of any layers for any images), `compare` (class
statistics, map ranking, probe, ablation), `plots` (figures of maps). One package per command:
`report` (`make analyze`), `oip` (`make oip`), `explore` (`make explore`), `experiments`
(`make experiment(s)`). Compute functions return arrays; plot functions take arrays and return
figures; the `write_*` functions return what they wrote.

The API for a notebook (docs/api.md), each imported on first use:

* `extract(model, x, layers=None)` -> {layer: maps}          (feature_maps)
* `compare_classes(model, x, y, a, b)` -> {layer: ranking...} (compare)
* `compute_oips(model, layer, maps=None, ...)` -> arrays      (oip.compute)
* `write_oips(model, layer, out, x_data=None, ...)` -> files  (oip)
* `write_report(model, test_data, digit, out, ...)` -> summary; out/index.html (report)
* `write_site(model, test_data, out, ...)` -> summary; out/index.html          (explore)
* `attribute(model, x, y, contrast=None)` -> maps and faithfulness (attribution.verdicts)
* `predict_images(model, model_path, images, out, ...)` -> answers; reports   (predict)

and the building blocks the tour notebook uses: the figures of `plots` and `oip.plots`,
`probe_accuracy` and `ablation` (compare), `OIPConfig`, `oip_quality`, `class_images`, `carve`
(oip), `Attributor` and `target_weights` (attribution.methods).
"""

from __future__ import annotations

import importlib

_API = {"extract": "analysis.feature_maps", "compare_classes": "analysis.compare",
        "compute_oips": "analysis.oip.compute", "write_oips": "analysis.oip",
        "write_report": "analysis.report", "write_site": "analysis.explore",
        "attribute": "analysis.attribution.verdicts", "predict_images": "analysis.predict",
        "write_concepts": "analysis.report.concepts",
        # the building blocks the tour notebook shows: plots, probe and ablation, OIP pieces
        "plot_activation_grid": "analysis.plots",
        "plot_class_samples": "analysis.plots",
        "plot_class_means": "analysis.plots",
        "plot_ranking": "analysis.plots",
        "plot_ablation": "analysis.plots",
        "probe_accuracy": "analysis.compare",
        "ablation": "analysis.compare",
        "OIPConfig": "analysis.oip.ascent",
        "oip_quality": "analysis.oip.compute",
        "carve": "analysis.oip.compute",
        "class_images": "analysis.oip.compute",
        "CARVE_CONFIG": "analysis.oip.compute",
        "CLASS_IMAGE_CONFIG": "analysis.oip.compute",
        "plot_oips": "analysis.oip.plots",
        "plot_carving": "analysis.oip.plots",
        "plot_class_images": "analysis.oip.plots",
        "Attributor": "analysis.attribution.methods",
        "target_weights": "analysis.attribution.methods"}


def __getattr__(name):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
