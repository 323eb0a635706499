"""The explorer's draw page (analysis/explore/draw.py) in a real browser: headless Chromium
driven by Selenium opens it from disk, with no server and no network, and its arithmetic is
compared with Keras and with the Python preprocessing.

* Forward pass: 50 test images through the page's `drawPage.forwardBatch`; every layer's
  output and the probabilities agree with Keras' within 1e-4 of each layer's largest value, for
  the series' network (tiny model of conftest) and for three other architectures built here
  (5x5 'same' conv, batch norm, 'same' average and max pooling, stride-2 and stride-3 convs,
  dropout, global pools, elu/tanh/gelu/silu/sigmoid, a linear output), exported for
  Fashion-MNIST with its class names. Every activation the page knows is compared with Keras'.
* Preprocessing: strokes drawn with Selenium's pointer actions (mouse, pen, touch) give the
  page an input within 1/255 per pixel of `mnist_cnn.preprocess.to_mnist_field` on the ink the
  page reports; a vertical stroke is read as a 1, a ring as a 0 and the two strokes as a 7.
* Knock-outs change the probabilities exactly as zeroing the unit in Keras does; the
  occlusion map equals the one computed with Keras on the occluded images.
* The page loads with no console error and no request leaving the disk; the speed of one
  forward pass and of the occlusion map is printed (targets: `make bench`, section draw).

Skipped, saying why, where Selenium or Chromium is missing (as test_explore_browser.py).
"""

import base64
import json

import numpy as np
import pytest

from test_explore_browser import _missing, browser  # noqa: F401 (the browser fixture)

# All in the worker that builds the tiny model's site, so one browser serves every test.
pytestmark = [pytest.mark.skipif(_missing() is not None, reason=_missing() or ""),
              pytest.mark.xdist_group("tiny_mnist")]
IMAGES = 50
TOLERANCE = 1e-4  # of each layer's largest value


def open_draw(browser, folder):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get((folder / "draw.html").as_uri())
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script("return document.readyState === 'complete' && !!window.drawPage"))
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"console: {errors}"
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
    assert urls and all(u.startswith("file://") for u in urls), urls


def test_the_page_opens_on_a_test_image(browser, explorer_site, tiny_model, mnist):
    """At load the page shows test image #0 as its take button does: the input, the bars with
    Keras' probabilities, and every layer's grid coloured (not the blank grey of no input)."""
    open_draw(browser, explorer_site.resolve())
    (x_test, y_test) = mnist[1]
    x = np.asarray(browser.execute_script("return drawPage.field()"), np.float32).reshape(28, 28)
    np.testing.assert_allclose(x, x_test[0] / np.float32(255), atol=1e-7)
    state = browser.execute_script("return drawPage.state()")
    np.testing.assert_allclose(state["probs"], np.asarray(tiny_model(x[None, ..., None]))[0],
                               atol=TOLERANCE)
    assert f"test image #0, label {y_test[0]}; the network says" in \
        browser.find_element("id", "sample-info").text
    colours = browser.execute_script("""
        return [...document.querySelectorAll('canvas[data-layer], #field')].map((c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = new Set();
          for (let i = 0; i < d.length; i += 4) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
          return [c.dataset.layer || c.id, [...seen]];
        });""")
    grids = [layer["name"] for layer in browser.execute_script("return drawPage.layers")
             if layer["kind"] not in ("flatten", "dropout")]
    assert sorted(name for name, _ in colours) == sorted(grids + ["field"])
    for name, seen in colours:  # blank: white gaps and grey cells, or a white field
        assert set(seen) - {"255,255,255", "235,235,235"}, f"{name} is blank at load"
        assert len(seen) > 2, f"{name}: {seen}"


def keras_layers(model, x, knocked=None):
    """Every layer's output (in chain order) with the units of `knocked` ({layer: [units]})
    zeroed after their layer, as the page does; plain Keras layer calls."""
    knocked, outs, h = knocked or {}, [], x
    for layer in model.layers[1:]:
        h = layer(h, training=False)
        if layer.name in knocked:
            mask = np.ones(h.shape[-1], np.float32)
            mask[knocked[layer.name]] = 0
            h = h * mask
        outs.append(np.asarray(h))
    return outs


def page_layers(browser, x, knocked=None):
    """The page's every-layer outputs for images x (n, 28, 28): list per layer of (n, ...)."""
    shapes = [tuple(L["shape"]) for L in browser.execute_script("return drawPage.layers")]
    data = base64.b64encode(np.ascontiguousarray(x, "<f4").tobytes()).decode()
    flat = np.frombuffer(base64.b64decode(browser.execute_script(
        "return drawPage.forwardBatch(arguments[0], arguments[1], arguments[2])",
        data, len(x), knocked or {})), "<f4")
    sizes = [int(np.prod(s)) for s in shapes]
    per_image = flat.reshape(len(x), sum(sizes))
    bounds = np.cumsum([0] + sizes)
    return [per_image[:, a:b].reshape(len(x), *s) for a, b, s in zip(bounds, bounds[1:], shapes)]


def assert_same_arithmetic(model, page, keras):
    names = [layer.name for layer in model.layers[1:]]
    assert len(page) == len(keras) == len(names)
    for name, mine, theirs in zip(names, page, keras):
        assert mine.shape == theirs.shape, name
        scale = max(np.abs(theirs).max(), 1e-12)
        worst = np.abs(mine - theirs).max() / scale
        assert worst <= TOLERANCE, f"{name}: largest difference {worst:.2e} of its largest value"


def test_forward_pass_matches_keras_layer_by_layer(browser, explorer_site, tiny_model, mnist):
    import keras

    site = explorer_site.resolve()
    index = (site / "index.html").read_text()
    assert 'href="draw.html"' in index and 'href="draw.html"' in (site / "conv_3-4.html").read_text()
    open_draw(browser, site)
    assert "draw.html" in browser.find_element("css selector", "header nav a.here").get_attribute("href")
    x = mnist[1][0][:IMAGES].astype(np.float32) / 255
    page = page_layers(browser, x)
    assert_same_arithmetic(tiny_model, page, keras_layers(tiny_model, x[..., None]))
    probs = page[-1]
    np.testing.assert_allclose(probs, np.asarray(tiny_model(x[..., None])), atol=TOLERANCE)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    values = np.linspace(-8, 8, 97)
    page = browser.execute_script("return Object.fromEntries(Object.keys(DrawNet.ACTIVATIONS).map("
                                  "name => [name, drawPage.activate(name, arguments[0])]))", values.tolist())
    from analysis.explore.draw import ACTIVATIONS

    assert sorted(page) == sorted(ACTIVATIONS)  # what the export lets through, the page computes
    for name, mine in page.items():
        theirs = np.asarray(keras.activations.get(name)(values.astype(np.float32)[None]))[0]
        assert np.abs(np.asarray(mine) - theirs).max() <= 1e-5 * np.abs(theirs).max(), name

    # hover a map of conv_3: its OIP and numbers; click: its unit page
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("drawPage.takeSample(7)")
    grid = browser.find_element("css selector", "canvas[data-layer=conv_3]")
    zoom = grid.size["width"] / int(grid.get_attribute("width"))
    ActionChains(browser).move_to_element_with_offset(  # map 4: 3 px + 1 px gap each
        grid, int((16 + 1.5) * zoom - grid.size["width"] / 2), int(1.5 * zoom - grid.size["height"] / 2)).perform()
    hover = browser.find_element("id", "hover")
    assert "conv_3 map 4" in hover.text and "max" in hover.text
    from selenium.webdriver.support.ui import WebDriverWait

    oip = "const i = document.querySelector('#hover img'); return i.complete && i.naturalWidth > 0 && i.getAttribute('src')"
    assert WebDriverWait(browser, 5).until(lambda b: b.execute_script(oip)) == "img/conv_3-4.png"
    ActionChains(browser).click().perform()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/conv_3-4.html"))


def other_models():
    """Three chains unlike the series' network, random weights (non-trivial batch-norm stats)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(6, 5, padding="same", activation="elu")(inputs)
    h = layers.BatchNormalization()(h)
    h = layers.AveragePooling2D(3, strides=2, padding="same")(h)  # 14, partial windows
    h = layers.Conv2D(10, 3, strides=2, padding="same", activation="tanh")(h)  # 7
    h = layers.MaxPooling2D(2, padding="same")(h)  # 4
    h = layers.Dropout(0.5)(h)
    h = layers.Conv2D(12, 3, activation="gelu")(h)  # 2
    h = layers.Flatten()(h)
    h = layers.Dense(16, activation="silu")(h)
    rich = keras.Model(inputs, layers.Dense(10)(h), name="rich")  # linear: logits
    bn = rich.layers[2]
    gamma, beta, mean, var = (w.shape for w in bn.get_weights())
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 2, gamma), rng.normal(0, 0.5, beta),
                    rng.normal(0, 0.3, mean), rng.uniform(0.2, 3, var)])
    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(5, 4, strides=3, activation="sigmoid")(inputs)  # 9
    h = layers.GlobalMaxPooling2D()(h)
    small = keras.Model(inputs, layers.Dense(10, activation="softmax")(h), name="small")
    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(7, 3, activation="relu")(inputs)
    h = layers.GlobalAveragePooling2D()(h)
    mean_pool = keras.Model(inputs, layers.Dense(10, activation="softmax")(h), name="mean_pool")
    return rich, small, mean_pool


def test_other_architectures_match_keras(browser, mnist, tmp_path):
    from analysis.explore.draw import write_draw

    (x_all, y_all) = mnist[1]
    x = x_all[:IMAGES].astype(np.float32) / 255
    for model in other_models():
        folder = tmp_path / model.name
        folder.mkdir()
        write_draw(folder, model, x_all[:100], y_all[:100], dataset="fashion")
        open_draw(browser, folder)
        assert_same_arithmetic(model, page_layers(browser, x), keras_layers(model, x[..., None]))
    bars = browser.find_element("id", "bars").text
    assert "9 Ankle boot" in bars and "0 T-shirt/top" in bars


def draw(browser, strokes, kind="mouse"):
    """Draw `strokes` (lists of (x, y) pad pixels) on the pad with one pointer of `kind`."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    pad = browser.find_element("id", "pad")
    actions = ActionBuilder(browser, mouse=PointerInput(getattr(interaction, f"POINTER_{kind.upper()}"), kind),
                            duration=0)
    for stroke in strokes:  # offsets from the pad's centre (W3C actions)
        actions.pointer_action.move_to(pad, stroke[0][0] - 140, stroke[0][1] - 140).pointer_down()
        for px, py in stroke[1:]:
            actions.pointer_action.move_to(pad, px - 140, py - 140)
        actions.pointer_action.pointer_up()
    actions.perform()


def ring(cx, cy, rx, ry, n=28):
    t = np.linspace(0, 2 * np.pi, n + 1)
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


SHAPES = {  # name: (pointer kind, strokes, the class a reasonably trained model must read)
    "vertical bar": ("mouse", [[(150, 40), (150, 140), (151, 240)]], 1),
    "ring": ("pen", [ring(140, 140, 62, 92, n=12)], 0),
    "7 in two strokes": ("touch", [[(70, 50), (140, 52), (210, 50)],
                                   [(210, 50), (170, 150), (120, 245)]], 7),
}


def test_drawing_preprocessing_prediction_and_knock_outs(browser, explorer_site, tiny_model):
    from mnist_cnn.preprocess import to_mnist_field

    open_draw(browser, explorer_site.resolve())
    for name, (kind, strokes, digit) in SHAPES.items():
        browser.find_element("id", "clear").click()
        draw(browser, strokes, kind)
        ink = browser.execute_script("return drawPage.ink()")
        alpha = np.frombuffer(base64.b64decode(ink["alpha"]), np.uint8).reshape(ink["height"], ink["width"])
        assert alpha.max() == 255 and (alpha > 0).mean() > 0.01, f"{name}: nothing drawn"
        field = np.asarray(browser.execute_script("return drawPage.field()")).reshape(28, 28)
        expected = to_mnist_field(alpha / 255.0)
        assert np.abs(field - expected).max() <= 1 / 255, name
        state = browser.execute_script("return drawPage.state()")
        keras_probs = np.asarray(tiny_model(field[None, ..., None].astype(np.float32)))[0]
        np.testing.assert_allclose(state["probs"], keras_probs, atol=TOLERANCE)
        if digit is not None:
            assert state["predicted"] == digit, f"{name} read as {state['predicted']}: {state['probs']}"
    # the port on inks no pointer makes: a dot, a small blob that is scaled up, a wide one
    rng = np.random.default_rng(0)
    for ink in (np.pad([[0.7]], 3), rng.random((7, 15)) * (rng.random((7, 15)) > 0.5),
                np.pad(rng.random((30, 90)) ** 4, ((20, 5), (3, 40)))):
        mine = browser.execute_script("return drawPage.toField(arguments[0], arguments[1], arguments[2])",
                                      ink.ravel().tolist(), *ink.shape)
        assert np.abs(np.reshape(mine, (28, 28)) - to_mnist_field(ink)).max() <= 1 / 255, ink.shape

    browser.find_element("id", "undo").click()  # the 7 loses its diagonal: a horizontal bar
    ink = browser.execute_script("return drawPage.ink()")
    alpha = np.frombuffer(base64.b64decode(ink["alpha"]), np.uint8).reshape(ink["height"], ink["width"])
    assert alpha[:70].any() and not alpha[70:].any()
    bar = np.asarray(browser.execute_script("return drawPage.field()")).reshape(28, 28)
    assert np.abs(bar - to_mnist_field(alpha / 255.0)).max() <= 1 / 255

    # Knock-outs: by clicking a map of conv_2 in knock mode, then dense_1's unit that drives the
    # prediction most; each time the page's probabilities are Keras' with those units zeroed.
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("drawPage.takeSample(0)")
    x = np.asarray(browser.execute_script("return drawPage.field()"), np.float32).reshape(1, 28, 28, 1)
    before = np.asarray(browser.execute_script("return drawPage.state().probs"))
    browser.find_element("css selector", "input[name=mode][value=knock]").click()
    grid = browser.find_element("css selector", "canvas[data-layer=conv_2]")
    zoom = grid.size["width"] / int(grid.get_attribute("width"))
    centre = [(12 + 5.5) * zoom, 5.5 * zoom]  # map 1: the second cell, 11 px + 1 px gap
    ActionChains(browser).move_to_element_with_offset(
        grid, int(centre[0] - grid.size["width"] / 2), int(centre[1] - grid.size["height"] / 2)).click().perform()
    predicted = int(before.argmax())
    hidden = keras_layers(tiny_model, x)[[layer.name for layer in tiny_model.layers[1:]].index("dense_1")][0]
    top = int(np.argmax(hidden * tiny_model.get_layer("output").get_weights()[0][:, predicted]))
    browser.execute_script("drawPage.toggle('dense_1', arguments[0])", top)
    state = browser.execute_script("return drawPage.state()")
    assert state["knocked"] == {"conv_2": [1], "dense_1": [top]}
    assert "2 units knocked out" in browser.find_element("id", "knocked").text
    zeroed = keras_layers(tiny_model, x, state["knocked"])[-1][0]
    np.testing.assert_allclose(state["probs"], zeroed, atol=TOLERANCE)
    # also the small probabilities, whose logarithms the knock-outs move by far more
    np.testing.assert_allclose(np.log(state["probs"]), np.log(zeroed), atol=1e-3)
    assert np.abs(np.log(state["probs"]) - np.log(before)).max() > 0.5
    browser.find_element("id", "reset").click()
    np.testing.assert_allclose(browser.execute_script("return drawPage.state().probs"), before, atol=1e-7)


def keras_occlusion(model, x, k, sizes=(4, 8), stride=2):
    """The page's occlusion map computed with Keras: mean drop of p(k) over covering patches."""
    base = np.asarray(model(x[None, ..., None]))[0, k]
    maps = []
    for size in sizes:
        spots = [(t, l) for t in range(0, 29 - size, stride) for l in range(0, 29 - size, stride)]
        covered = np.repeat(x[None], len(spots), axis=0)
        for i, (t, l) in enumerate(spots):
            covered[i, t:t + size, l:l + size] = 0
        drops = base - np.asarray(model(covered[..., None]))[:, k]
        total, count = np.zeros((28, 28)), np.zeros((28, 28))
        for d, (t, l) in zip(drops, spots):
            total[t:t + size, l:l + size] += d
            count[t:t + size, l:l + size] += 1
        maps.append(total / count)
    return maps


def test_test_images_occlusion_and_speed(browser, explorer_site, tiny_model, mnist):
    from selenium.webdriver.support.ui import WebDriverWait

    site = explorer_site.resolve()
    open_draw(browser, site)
    (x_test, y_test) = mnist[1]
    n = 123
    box = browser.find_element("id", "sample-index")
    box.clear()
    box.send_keys(str(n))
    browser.find_element("id", "take").click()
    x = np.asarray(browser.execute_script("return drawPage.field()"), np.float32).reshape(28, 28)
    np.testing.assert_allclose(x, x_test[n] / np.float32(255), atol=1e-7)
    assert f"test image #{n}, label {y_test[n]}" in browser.find_element("id", "sample-info").text
    samples = json.loads((site / "draw-samples.js").read_text().split("=", 1)[1].rstrip().rstrip(";"))
    assert samples["count"] == 1000 and samples["labels"] == y_test[:1000].tolist()

    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return drawPage.state().occlusion"))
    occlusion = browser.execute_script("return drawPage.state().occlusion")
    assert occlusion["k"] == int(np.asarray(tiny_model(x[None, ..., None])).argmax())
    for mine, theirs in zip(occlusion["maps"], keras_occlusion(tiny_model, x, occlusion["k"])):
        assert np.abs(np.reshape(mine["drop"], (28, 28)) - theirs).max() <= TOLERANCE, mine["size"]
        assert mine["max"] > 0.01  # covering the digit matters
    assert len(browser.find_elements("css selector", "#occlusion canvas")) == 2

    timing = browser.execute_script("return drawPage.bench(20)")
    print(f"\ndraw page in headless Chromium: forward pass {timing['forward_ms']:.1f} ms "
          f"(median of 20), occlusion map {timing['occlusion_ms']:.0f} ms")
    assert timing["forward_ms"] < 200 and timing["occlusion_ms"] < 20_000  # generous: 2 shared cores
    browser.find_element("id", "random").click()
    assert "test image #" in browser.find_element("id", "sample-info").text
