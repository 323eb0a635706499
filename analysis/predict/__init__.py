"""`make predict IMAGE=...`: what the network says about your own image, and why.

For each image (`mnist_cnn.images` reads and centres it): the three most probable classes are
printed, and reports/predict/<image name>/index.html is written (atomically: the folder
appears whole or not at all) with the image as given and as the network sees it, the attribution
maps of the answer's logit and of "the answer rather than the runner-up" with their
faithfulness verdicts (`analysis.attribution`), the most active maps of the last conv layer with
their OIPs (linked to the explorer's unit pages when a site of this model exists), the feature
maps of every layer, and the nearest training images in the last hidden layer's space.

The package: `compute` (the arrays), `svg` (the curves), `page` (the HTML); the pictures
are `analysis.pictures`. `predict_images` is the verb; `mnist_cnn/app/predict.py` the command.
"""

from __future__ import annotations

import os
from pathlib import Path


def explorer_site(dataset, digest):
    """The explorer site of the model whose file has SHA-256 `digest`, or None."""
    from analysis.site import read_site
    from mnist_cnn.config import report_dir

    site = Path(report_dir(dataset, "explorer"))
    meta = read_site(site)
    return site if meta is not None and meta.get("model", {}).get("sha256") == digest else None


def _oips(model, digest, layer, maps, site, steps, cache_dir):
    """{map: OIP image (28, 28)}: the site's pictures when an explorer site of this model
    exists, else the OIPs of the maps asked for (`steps` gradient steps), each computed once per
    model and kept in `cache_dir` (start images are seeded per map, so a map's OIP does not
    depend on which others were computed with it)."""
    import numpy as np

    if site is not None:
        from PIL import Image

        found = {}
        for m in maps:
            path = site / "img" / f"{layer}-{int(m)}.png"
            if path.is_file():
                found[int(m)] = 1.0 - np.asarray(Image.open(path).convert("L"), np.float32) / 255
        return found
    from mnist_cnn.fileio import save_npz

    if steps == 0:
        return {}
    path = Path(cache_dir) / f"oips-{layer}-{steps}-{digest[:16]}.npz"
    cached = {}
    if path.is_file():
        try:
            with np.load(path) as f:
                cached = {int(k[4:]): f[k] for k in f.files if k.startswith("map_")}
        except (OSError, ValueError, KeyError):
            cached = {}  # a damaged cache is rebuilt
    missing = sorted({int(m) for m in maps} - set(cached))
    if missing:
        from analysis.oip.ascent import OIPConfig
        from analysis.oip.compute import compute_oips

        result = compute_oips(model, layer, missing, OIPConfig(steps=steps), verbose=0)
        cached.update({int(m): image for m, image in zip(result["maps"], result["images"])})
        save_npz(path, **{f"map_{m}": image for m, image in sorted(cached.items())})
    return {int(m): cached[int(m)] for m in maps}


def predict_images(model, model_path, images, out, dataset="mnist", data=None, contrast=None,
                   top: int = 8, oip_steps: int = 80) -> list:
    """Write the predict report of each image and return what each says.

    Parameters
    ----------
    model : keras.Model, loaded for `dataset` (`mnist_cnn.model.load_trained`).
    model_path : its file (hashed: the caches and the explorer link are per model).
    images : list of (path, ink): `ink` as `mnist_cnn.images.load_ink(path)` returns it.
    out : folder of the reports: one subfolder per image, named after its file.
    dataset : "mnist" or "fashion"; data : the training data's file (None: the default).
    contrast : class compared with the answer (None, or the answer itself: the runner-up).
    top : most active maps of the last conv layer shown; oip_steps : their OIPs' steps.

    Returns
    -------
    list of dicts, one per image: "path", "folder" (its report), "answer" (the three most
    probable (class, probability)), "names" (class names), "polarity", "faithful" (titles of
    the methods that beat both controls and pass the randomisation check).
    """
    import numpy as np

    from analysis.attribution.methods import Attributor
    from analysis.predict import compute, page
    from mnist_cnn.data.registry import get_dataset
    from mnist_cnn.fileio import atomic_dir, sha256_file
    from mnist_cnn.images import to_field

    info = get_dataset(dataset)
    names = list(info.class_names)
    attributor = Attributor(model)
    field_maps = compute.FieldMaps(model)
    out_root = Path(out)
    digest = sha256_file(model_path)
    features, y_train, x_train = compute.training_features(
        model, digest, info.name, data, out_root / ".cache")
    site = explorer_site(info.name, digest)
    layer = compute.last_conv(model)
    model_info = {"file": str(model_path), "sha256": digest}
    results = []
    for path, ink in images:
        field = to_field(ink)
        probs = np.asarray(model(field[None, ..., None], training=False))[0]
        top3 = compute.answer(probs)
        label = top3[0][0]
        versus = contrast if contrast is not None and contrast != label else top3[1][0]
        maps = field_maps(field)
        hidden = maps.pop("hidden")
        shown = None
        oips = {}
        if layer is not None:
            idx, means = compute.top_maps(maps[layer], top)
            shown = (layer, idx, means)
            oips = _oips(model, digest, layer, idx, site, oip_steps, out_root / ".cache")
        idx, dist = compute.nearest(features, hidden, 8)
        item = {"name": Path(path).name, "path": path, "ink": ink, "field": field,
                "thumbnail": ink.preview, "answer": top3, "contrast": int(versus),
                "maps": maps, "top": shown,
                "attributions": compute.attributions(attributor, field, label, versus),
                "neighbours": (idx, dist, y_train[idx], x_train[idx]),
                "hidden_layer": field_maps.hidden, "hidden_units": int(hidden.size),
                "model": model_info}
        target = out_root / Path(path).stem
        link = os.path.relpath(site, target) if site is not None else None
        with atomic_dir(target) as tmp:
            summary = page.write_page(tmp, item, oips, link, names)
        rows = summary["attribution"]["class"]["rows"]
        results.append({"path": path, "folder": target, "answer": top3, "names": names,
                        "polarity": ink.polarity,
                        "faithful": [r["title"] for r in rows if r["beats_random"]
                                     and r["beats_sobel"] and r["passes_randomisation"]]})
    return results
