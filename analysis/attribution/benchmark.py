"""The numbers issue #20 sets, measured on a trained model (`make bench`, section predict):

* integrated gradients' completeness on 100 test images (within 1%);
* every method's deletion and insertion scores against the random and the Sobel order on 500
  test images, and which method beats random deletion on the most (>= 95% required);
* the randomisation check on 50 of them;
* the seconds of attribution for 1,000 test images in one batch call (<= 30 s), and of
  `python -m mnist_cnn predict` on one image, a fresh process, TensorFlow's start included
  (<= 10 s), both the first run for a model (its caches built) and the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.attribution import faithfulness
from analysis.attribution.verdicts import COMPLETENESS_TOLERANCE, best_against_random, measure
from analysis.attribution.methods import Attributor, target_weights


def attribution_numbers(model, x, y, timing_images: int = 1000, faithful_images: int = 500,
                        complete_images: int = 100, randomise: int = 50) -> dict:
    """Completeness, faithfulness and the batch time on test images `x` (N, 28, 28, 1), `y`."""
    a = Attributor(model)
    w = target_weights(y, None, a.num_classes)
    a.all_maps(x[:8], w[:8])  # trace every compiled function once, outside the timing
    started = time.perf_counter()
    a.all_maps(x[:timing_images], w[:timing_images])
    batch_seconds = time.perf_counter() - started
    _, check = a.integrated_gradients(x[:complete_images], w[:complete_images], return_check=True)
    err = check["relative_error"]
    result = measure(a, x[:faithful_images], w[:faithful_images], randomise=randomise)
    rows = result["rows"]
    return {
        "attribution_1000_seconds": round(batch_seconds, 2), "timing_images": timing_images,
        "completeness": {"images": complete_images, "within_1_percent": float((err <= COMPLETENESS_TOLERANCE).mean()),
                         "max_relative_error": float(err.max()),
                         "images_needing_more_steps": int((check["steps"] > a.ig_steps).sum())},
        "faithfulness_images": faithful_images, "randomised_images": result["randomised_images"],
        "best_against_random_deletion": best_against_random(rows),
        "methods": {r["method"]: {k: (round(v, 4) if isinstance(v, float) else v)
                                  for k, v in r.items() if k not in ("method", "title")}
                    for r in rows},
        "controls": {k: {"deletion_auc": round(v["deletion_auc"], 4),
                         "insertion_auc": round(v["insertion_auc"], 4)}
                     for k, v in result["deletion"]["summary"].items() if k in ("random", "sobel")},
        "randomisation_threshold": faithfulness.RANDOMISATION_PASS}


def predict_wall(model_path, image: np.ndarray, runs: int = 2) -> list:
    """Wall seconds of `python -m mnist_cnn predict` on one PNG of `image` (28x28 uint8, ink
    dark), fresh processes into one temporary reports folder: the first builds the caches."""
    from PIL import Image

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digit.png"
        Image.fromarray(255 - image).resize((280, 280)).save(path)
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mnist_cnn", "predict", str(path), "--model",
                            str(model_path), "--out", str(Path(tmp) / "predict")], check=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                           stdout=subprocess.DEVNULL)
            times.append(round(time.perf_counter() - started, 2))
    return times
