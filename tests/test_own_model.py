"""Your own model (issue #17): two other architectures, trained here on a small slice with
`mc.train`, through `analyze`, `oip` and `explore` on the command line, and checked against
plain Keras: feature maps, causal effects of zeroing a unit, receptive fields.

* "convnet": the keras-io "Simple MNIST convnet" (2 convs, 2 max-pools, flatten, dropout, no
  hidden dense), with fewer filters;
* "odd": 5x5 'same' convolutions, batch norm, average pooling, a stride-2 convolution, global
  average pooling, a hidden dense and a linear (logits) output.
"""

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402


def convnet():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(4, 3, activation="relu", name="c1"),
        layers.MaxPooling2D(2, name="p1"),
        layers.Conv2D(6, 3, activation="relu", name="c2"),
        layers.MaxPooling2D(2, name="p2"),
        layers.Flatten(name="flat"),
        layers.Dropout(0.5, name="drop"),
        layers.Dense(10, activation="softmax", name="out"),
    ], name="simple_convnet")


def odd():
    x = inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(4, 5, padding="same", activation="relu", name="wide")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.AveragePooling2D(2, name="avg")(x)
    x = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="stride2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(8, activation="relu", name="hidden")(x)
    return keras.Model(inputs, layers.Dense(10, name="logits")(x), name="odd")


BUILDERS = {"convnet": convnet, "odd": odd}
UNITS = {"convnet": 4 + 6 + 10, "odd": 4 + 6 + 8 + 10}


@pytest.fixture(scope="session")  # session: the heavy-first order interleaves modules
def own_models(tmp_path_factory):
    """{name: (path, model)} trained with the recipe: 1 epoch on 1500 images, float32, evaluated
    on the first 2000 test images, with empty training figures (the tests here read the models;
    the training's own outputs are tested in tests/test_train.py)."""
    import matplotlib.pyplot as plt

    import mnist_cnn as mc
    from mnist_cnn import training

    load_dataset = training.load_dataset

    def first_2000(*args, **kwargs):
        fit, (x_test, y_test) = load_dataset(*args, **kwargs)
        return fit, (x_test[:2000], y_test[:2000])

    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "load_dataset", first_2000)
        for figure in ("plot_confusion", "plot_learning_curves"):
            patch.setattr(training, figure, lambda *args, **kwargs: plt.figure(figsize=(1, 1)))
        for name, build in BUILDERS.items():
            keras.utils.set_random_seed(0)
            config = mc.TrainConfig(epochs=1, train_limit=1500, batch_size=32, lr=0.05,
                                    warmup_epochs=0, augment=False, val_size=1000, val_every=1,
                                    precision="float32", steps_per_execution=1,
                                    out_dir=str(tmp_path_factory.mktemp(name)))
            out[name] = (config.model_path, mc.train(config, model=build(), verbose=0))
    return out


@pytest.fixture(scope="module")
def images(mnist):
    from mnist_cnn.data import to_input

    (_, _), (x, y) = mnist
    return to_input(x[:400]), y[:400].astype(int)


@pytest.mark.heavy
@pytest.mark.parametrize("name", list(BUILDERS))
def test_commands_run_on_the_model(name, own_models, tmp_path, run_main, first_test_images,
                                   monkeypatch):
    from analysis.report import concepts, sections
    from mnist_cnn.network import describe

    # The confusion matrix and the sample images do not depend on the architecture (the
    # series' tests cover them); the report's OIP section runs on a model of its own in
    # tests/test_api.py (the docs/api.md example), the attribution methods on constructed
    # models in tests/test_attribution.py. Every other section that reads layers runs.
    monkeypatch.setattr(sections, "SECTIONS", [s for s in sections.SECTIONS if s not in (
        sections.confusion_section, sections.samples_section, sections.oip_section,
        sections.attribution_section)])
    monkeypatch.setattr(concepts, "REPORT_PERMUTATIONS", 999)  # its statistics: test_concepts
    path, model = own_models[name]
    net = describe(model)
    last = net.last_conv.name
    rc, err = run_main(["analyze", "--model", path, "--digit", "3", "--contrast", "5",
                        "--samples", "1", "--out", str(tmp_path / "report")])
    assert rc == 0, err
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert (tmp_path / "report" / f"ranking_{last}.csv").is_file()
    assert summary["probe"]["n_features"] == int(np.prod(net.layer(last).output_shape))
    rc, err = run_main(["oip", "--model", path, "--layer", last, "--steps", "5", "--maps", "0,1",
                        "--precision", "float32", "--out", str(tmp_path / "oip")])
    assert rc == 0, err
    with np.load(tmp_path / "oip" / f"{last}.npz") as z:
        assert z["images"].shape == (2, 28, 28)
    site = tmp_path / "site"
    rc, err = run_main(["explore", "--model", path, "--out", str(site), "--limit", "300",
                        "--steps", "5", "--starts", "1", "--precision", "float32"])
    assert rc == 0, err
    meta = json.loads((site / "site.json").read_text())
    assert list(meta["layers"]) == [u.name for u in net.units]
    pages = {p.stem for p in site.glob("*-*.html")}
    assert len(pages) == UNITS[name] == sum(u.channels for u in net.units)
    assert pages == {f"{u.name}-{i}" for u in net.units for i in range(u.channels)}
    first = json.loads((site / f"{net.units[0].name}-0.json").read_text())
    assert np.asarray(first["circuit"]["kernel"]).shape == net.units[0].kernel_size
    if name == "odd":  # batch norm, average pooling, a stride, global pooling, logits out
        rc, err = run_main(["concepts", "--model", path, "--images", "300", "--permutations",
                            "49", "--seeds", "1", "--out", str(tmp_path / "concepts")])
        assert rc == 0, err
        concepts = json.loads((tmp_path / "concepts" / "concepts.json").read_text())
        assert concepts["causal"]["layer"] == last
        assert concepts["settings"]["tcav_layers"] == [last, "hidden"]
        assert {r["layer"] for r in concepts["probes"]} <= set(net.names)
    rc, _ = run_main(["info", "--model", path])
    assert rc == 0


@pytest.mark.parametrize("name", list(BUILDERS))
def test_feature_maps_equal_a_plain_keras_cut(name, own_models, images):
    from analysis.feature_maps import FeatureExtractor, feature_layers

    _, model = own_models[name]
    x, _ = images
    names = feature_layers(model)
    maps = FeatureExtractor(model, names, batch_size=150)(x)
    for layer in names:
        cut = keras.Model(model.inputs, model.get_layer(layer).output)
        np.testing.assert_allclose(maps[layer], cut.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def _zeroed_model(model, layer, unit):
    """The model rebuilt layer by layer with `unit` of `layer` multiplied by 0."""
    x = inputs = keras.Input((28, 28, 1))
    for lay in model.layers:
        if isinstance(lay, keras.layers.InputLayer):
            continue
        x = lay(x)
        if lay.name == layer:
            mask = np.ones(x.shape[-1], np.float32)
            mask[unit] = 0.0
            x = x * mask
    return keras.Model(inputs, x)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_causal_effect_equals_running_the_model_with_the_unit_zeroed(name, own_models, images):
    from analysis.explore.causal import causal_effects
    from mnist_cnn.network import describe

    _, model = own_models[name]
    x, y = images
    effects = causal_effects(model, x, y, batch=200)
    base = np.asarray(model(x))
    for info in describe(model).units[:-1]:
        unit = info.channels // 2
        p = np.asarray(_zeroed_model(model, info.name, unit)(x))
        for k in (int(y[0]), int(y[1])):
            mine = y == k
            expected = (p[mine].argmax(1) == k).mean() - (base[mine].argmax(1) == k).mean()
            assert effects[info.name]["accuracy"][unit, k] == pytest.approx(expected, abs=1e-9)
            expected = p[mine, k].mean() - base[mine, k].mean()
            assert effects[info.name]["probability"][unit, k] == pytest.approx(expected, abs=2e-5)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_receptive_fields_agree_with_single_pixel_perturbation(name, own_models):
    """The input pixels that change a map's centre unit fill exactly its box."""
    from mnist_cnn.network import describe

    _, model = own_models[name]
    net = describe(model)
    cut = keras.Model(model.inputs, [model.get_layer(i.name).output for i in net.map_layers])
    base = np.random.default_rng(0).uniform(0.2, 0.8, (1, 28, 28, 1)).astype("float32")
    eye = np.eye(784, dtype="float32").reshape(784, 28, 28, 1)
    plain = cut.predict(base, verbose=0)
    moved = [cut.predict(base + d * eye, verbose=0, batch_size=784) for d in (3.0, -3.0)]
    for j, info in enumerate(net.map_layers):
        row, col = info.output_shape[0] // 2, info.output_shape[1] // 2
        seen = np.zeros(784, bool)
        for m in moved:
            seen |= np.abs(m[j][:, row, col, :] - plain[j][0, row, col, :]).max(axis=-1) > 1e-6
        rows, cols = np.nonzero(seen.reshape(28, 28))
        (top, bottom), (left, right) = info.box(row, col)
        assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (top, bottom, left, right), \
            info.name


def _refused_models():
    lam = keras.Sequential([keras.Input((28, 28, 1)), layers.Lambda(lambda t: t * 2, name="double"),
                            layers.Flatten(), layers.Dense(10, activation="softmax")])
    x = keras.Input((28, 28, 1))
    a = layers.Conv2D(2, 3, padding="same", name="left")(x)
    b = layers.Conv2D(2, 3, padding="same", name="right")(x)
    branch = keras.Model(x, layers.Dense(10, activation="softmax")(
        layers.Flatten()(layers.Concatenate(name="join")([a, b]))))
    colour = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(2, 3), layers.Flatten(),
                               layers.Dense(10, activation="softmax")])
    five = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(2, 3), layers.Flatten(),
                             layers.Dense(5, activation="softmax", name="five")])
    return [(lam, "layer 'double' is a Lambda"), (branch, "layer 'join' is a Concatenate"),
            (colour, "takes inputs of shape (32, 32, 3)"),
            (five, "layer 'five' has 5 units, but the data set has 10 classes")]


def test_refused_models_are_one_line_exit_2_nothing_written(tmp_path, run_main):
    for i, (model, words) in enumerate(_refused_models()):
        path = tmp_path / f"m{i}.keras"
        model.save(path)
        out = tmp_path / "out"
        for argv in (["analyze", "--digit", "3", "--out", str(out / "report")],
                     ["oip", "--layer", model.layers[0].name, "--out", str(out / "oip")],
                     ["explore", "--out", str(out / "site")], ["evaluate"]):
            rc, err = run_main([*argv, "--model", str(path)])
            assert rc == 2 and len(err) == 1, (argv, err)
            assert words in err[0], (argv, err)
            assert not out.exists()
