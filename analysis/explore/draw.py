"""The explorer's draw page: draw a digit and watch every map of every layer respond (issue #19).

`write_draw(out, model, x, y, dataset)` writes into a site folder:

* `draw.html`, the page (header and style of the explorer),
* `draw.js`, its code: the drawing-to-28x28 step (a line-by-line port of
  `mnist_cnn.preprocess.to_mnist_field`), a small forward pass over Float32Array (conv with any
  kernel, stride and padding, max/avg pooling, batch norm at inference, dropout as identity,
  flatten in Keras' HWC order, global pooling, dense, the activations in `ACTIVATIONS`), the
  layer grids, knock-outs and the occlusion map,
* `draw-model.js`, the model: its layer list from `mnist_cnn.network.describe` and its weights as
  base64 float32, assigned to a global. A `<script>` file, because browsers refuse `fetch()` of
  local files and the site must open from disk,
* `draw-samples.js`, the first test images (uint8) with their labels.

No library and nothing from the network: the page's arithmetic is checked against Keras in
headless Chromium (tests/test_draw_browser.py).
"""

from __future__ import annotations

import base64
import re
import json
from pathlib import Path

import numpy as np

from analysis import html
from mnist_cnn.data.registry import get_dataset
from mnist_cnn.errors import UserError
from mnist_cnn.fileio import write_bytes

ASSETS = Path(__file__).with_name("assets")
# What draw.js computes (Keras 3 names, as `describe` reports them); a model with any other
# activation is refused here rather than drawn wrong in the page.
ACTIVATIONS = ("linear", "relu", "relu6", "softmax", "log_softmax", "sigmoid", "tanh", "elu",
               "selu", "softplus", "softsign", "silu", "gelu", "leaky_relu", "hard_sigmoid",
               "exponential", "celu", "hard_shrink", "hard_silu", "hard_tanh", "log_sigmoid",
               "mish", "soft_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "tanh_shrink")
# layers whose channel c is still unit c of the conv or dense layer before them
PASS_CHANNELS = ("max_pool", "avg_pool", "batch_norm", "dropout", "global_avg_pool",
                 "global_max_pool")
SAMPLES = 1000  # test images shipped with the page (the first ones, with their labels)
CODE = ("draw-net.js", "draw.js", "draw.css")  # copied from assets/


def _b64(array) -> str:
    """Little-endian float32 bytes of `array`, base64 (what `Float32Array` reads in the page)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _batch_norm(layer) -> tuple:
    """(scale, shift) per channel of a BatchNormalization at inference: y = x * scale + shift,
    computed in float64 as Keras does it in float32, (x - mean) / sqrt(var + eps) * gamma + beta."""
    config = layer.get_config()
    if config.get("axis", -1) not in (-1, 3, [-1], [3]):
        raise UserError(f"layer {layer.name!r} normalises axis {config['axis']}; the draw page "
                        "supports BatchNormalization over channels (axis -1)")
    weights = dict(zip([w.path.rsplit("/", 1)[-1] for w in layer.weights],
                       (np.asarray(w, np.float64) for w in layer.get_weights())))
    channels = weights["moving_mean"].shape[0]
    gamma = weights.get("gamma", np.ones(channels))
    beta = weights.get("beta", np.zeros(channels))
    scale = gamma / np.sqrt(weights["moving_variance"] + config["epsilon"])
    return scale, beta - weights["moving_mean"] * scale


def export_model(model, dataset: str = "mnist", unit_pages=()) -> dict:
    """The model as the page reads it: its layer list and weights.

    Parameters
    ----------
    model : keras.Model accepted by `mnist_cnn.network.describe`
    dataset : its data set (class names for the bars)
    unit_pages : names of the layers whose units have explorer pages (`<layer>-<i>.html`, OIP
        `img/<layer>-<i>.png`); maps of other layers link to none

    Returns
    -------
    dict, JSON-ready: name, dataset, class_names, input_shape, layers (one dict per layer: name,
    kind, shape, kernel, strides, padding, activation, unit; source: the unit layer whose unit c
    map c is (itself, or the conv a pool, batch norm or dropout passes on; None after a
    flatten); page: whether that layer has unit pages; and weights as base64 float32:
    w and b for conv and dense, scale and shift for batch norm)

    Raises
    ------
    UserError
        A layer `describe` refuses, or an activation the page does not compute.
    """
    from mnist_cnn.network import describe

    info = get_dataset(dataset)
    net = describe(model, num_classes=info.num_classes)
    pages = set(unit_pages)
    layers, source = [], None
    for item in net.layers:
        layer = model.get_layer(item.name)
        if item.activation is not None and item.activation not in ACTIVATIONS:
            raise UserError(f"layer {item.name!r} has activation {item.activation!r}; the draw "
                            f"page computes {', '.join(ACTIVATIONS)}")
        # the unit whose map channel c is: its own, or that of the conv it pools / normalises
        if item.is_unit:
            source = item.name
        elif item.kind not in PASS_CHANNELS:
            source = None
        entry = {"name": item.name, "kind": item.kind, "shape": list(item.output_shape),
                 "kernel": item.kernel_size and list(item.kernel_size),
                 "strides": item.strides and list(item.strides), "padding": item.padding,
                 "activation": item.activation, "unit": item.is_unit, "source": source,
                 "page": source in pages}
        if item.is_unit:
            kernel, *bias = layer.get_weights()
            entry["w"] = _b64(kernel)  # Keras order: (kh, kw, c_in, c_out) or (n_in, n_out)
            entry["b"] = _b64(bias[0] if bias else np.zeros(item.channels))
        elif item.kind == "batch_norm":
            entry["scale"], entry["shift"] = map(_b64, _batch_norm(layer))
        layers.append(entry)
    return {"name": net.name, "dataset": info.name, "title": info.title,
            "class_names": list(info.class_names), "class_noun": info.class_noun,
            "input_shape": list(net.input_shape), "layers": layers}


def export_samples(x, y, count: int = SAMPLES) -> dict:
    """The first `count` test images (uint8 (N, 28, 28), base64) and their labels."""
    x = np.asarray(x)[:count]
    if x.dtype != np.uint8:  # images in [0, 1]
        x = np.clip(np.rint(np.asarray(x, np.float64) * 255), 0, 255).astype(np.uint8)
    return {"count": int(len(x)), "side": int(x.shape[1]),
            "labels": [int(v) for v in np.asarray(y)[:len(x)]],
            "pixels": base64.b64encode(np.ascontiguousarray(x).tobytes()).decode("ascii")}


def _script(name: str, value: dict) -> str:
    return (f"// written by `make explore` (analysis/explore/draw.py); read by draw.js\n"
            f"window.{name} = {json.dumps(value, separators=(',', ':'))};\n")


def page_body(model_info: dict, samples: int) -> str:
    """The draw page's <main> content (draw.js fills the grids and bars)."""
    digits = model_info["class_noun"] == "digit"
    classes = html.escape(model_info["title"])
    return (
        f"<h1>{'Draw a digit' if digits else 'Draw, or take a test image,'} and watch the "
        "network</h1>"
        '<div class="draw-top"><div class="draw-pad">'
        '<canvas id="pad" width="280" height="280" aria-label="drawing pad"></canvas>'
        '<p class="draw-tools"><button id="undo">undo</button> <button id="clear">clear</button>'
        f' &middot; test image # <input id="sample-index" type="number" min="0" max="{samples - 1}"'
        ' value="0" aria-label="test image index"> <button id="take">take</button>'
        ' <button id="random">random test image</button></p>'
        '<p id="sample-info" class="small"></p></div>'
        '<div class="draw-input"><h3>What the network gets (28&times;28)</h3>'
        '<canvas id="field" width="28" height="28" class="px"></canvas>'
        '<p class="small">The drawing&rsquo;s bounding box scaled to fit 20&times;20 keeping its '
        "aspect (area averaging), then shifted so its centre of mass is at the centre, as "
        "MNIST was made.</p></div>"
        '<div class="draw-probs"><h3>Class probabilities</h3><div id="bars"></div>'
        '<p id="knocked" class="small"></p></div></div>'
        '<p class="draw-mode">Click a map: <label><input type="radio" name="mode" value="open" '
        'checked> open its unit page</label> <label><input type="radio" name="mode" value="knock">'
        ' knock it out (zero it; click again to restore)</label> '
        '<button id="reset">reset knock-outs</button> <span id="timing" class="small"></span></p>'
        '<div id="hover" class="draw-hover" role="status"></div>'
        '<div id="layers"></div>'
        '<h2 id="occlusion-title">Occlusion</h2><p class="small">How much covering each part of '
        "the image (a 4&times;4 and an 8&times;8 patch of paper sliding by 2 pixels) lowers the "
        "probability of the predicted class: red, it lowers it; blue, it raises it. Each pixel "
        "shows the mean change over the patches covering it; forward passes only. Computed when "
        'the pen lifts.</p><div id="occlusion" class="row"></div>'
        f'<p class="small">The page runs the network itself, in JavaScript, from the weights in '
        f"draw-model.js ({classes} model <code>{html.escape(model_info['name'])}</code>): "
        "every layer&rsquo;s output is checked against Keras in headless Chromium "
        "(tests/test_draw_browser.py); see docs/draw.md.</p>")


def write_draw(out, model, x, y, dataset: str = "mnist", unit_pages=(), page=None) -> list:
    """Write the draw page and its data into the existing folder `out`.

    Parameters
    ----------
    out : a site folder
    model : keras.Model (float32)
    x, y : test images (uint8 (N, 28, 28) or floats in [0, 1]) and labels; the first
        `SAMPLES` are shipped for "take test image #N"
    dataset : the data set's name ("mnist", "fashion")
    unit_pages : layers with unit pages (see `export_model`)
    page : callable (title, body) -> html, the explorer's page frame; None: a bare page

    Returns
    -------
    list of the files written (Paths)
    """
    out = Path(out)
    info = export_model(model, dataset, unit_pages)
    samples = export_samples(x, y)
    body = page_body(info, samples["count"]) + (
        '<link rel="stylesheet" href="draw.css"><script src="draw-model.js"></script>'
        '<script src="draw-samples.js"></script><script src="draw-net.js"></script>'
        '<script src="draw.js"></script>')
    title = f"draw - {info['title']} explorer"
    text = page(title, body) if page else html.page(title, f"<main>{body}</main>",
                                                    stylesheets=["site.css"])
    contents = {"draw.html": text, "draw-model.js": _script("DRAW_MODEL", info),
                "draw-samples.js": _script("DRAW_SAMPLES", samples),
                **{name: (ASSETS / name).read_text() for name in CODE}}
    if not page:  # a bare page (tests, bench) still needs the explorer's style
        contents["site.css"] = (ASSETS / "site.css").read_text()
    for name, content in contents.items():
        write_bytes(out / name, content.encode())
    return [out / name for name in contents]


# Headless Chromium as `make bench` and the browser tests drive it. Known to work as root in a
# closed network: without the background-networking flags Chromium's own connections are
# refused and logged.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage", "--window-size=1200,900")


def time_page(folder, images: int = 10, repeats: int = 30) -> dict:
    """Speed of the draw page in `folder`, in headless Chromium (for `make bench`).

    For each of the first `images` test images: the median of `repeats` forward passes, the
    time of one occlusion map and of redrawing the page (input, bars, every layer's grid: what
    each frame of drawing adds to a forward pass), from `drawPage.bench`. Returns medians and
    largest values in milliseconds, or {"skipped": why} where Selenium or Chromium is missing.
    """
    import shutil
    import tempfile

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return {"skipped": "selenium is not installed"}
    if not chromium or not driver_path:
        return {"skipped": "no chromium/chromedriver (apt-get install -y chromium chromium-driver)"}
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="draw-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            driver.get((Path(folder).resolve() / "draw.html").as_uri())
            runs = []
            for n in range(images):
                driver.execute_script("drawPage.takeSample(arguments[0])", n)
                runs.append(driver.execute_script("return drawPage.bench(arguments[0])", repeats))
            agent = driver.execute_script("return navigator.userAgent")
        finally:
            driver.quit()
    forward, occlusion, frame = ([r[key] for r in runs]
                                 for key in ("forward_ms", "occlusion_ms", "render_ms"))
    browser = re.search(r"\w*Chrome/[\d.]+", agent)
    return {"browser": browser.group(0) if browser else agent, "images": images, "repeats": repeats,
            "forward_ms_median": round(float(np.median(forward)), 2),
            "forward_ms_max": round(max(forward), 2),
            "occlusion_ms_median": round(float(np.median(occlusion)), 1),
            "occlusion_ms_max": round(max(occlusion), 1),
            "render_ms_median": round(float(np.median(frame)), 2)}


def measure(model, x, y, dataset: str = "mnist") -> dict:
    """`time_page` on a draw page of `model` written into a temporary folder, with the targets
    of issue #19: a forward pass <= 20 ms, an occlusion map <= 1 s (medians)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="draw-bench-") as out:
        write_draw(out, model, x, y, dataset)
        result = time_page(out)
    if "skipped" not in result:
        result["targets_met"] = {"forward_20ms": result["forward_ms_median"] <= 20,
                                 "occlusion_1s": result["occlusion_ms_median"] <= 1000}
    return result
