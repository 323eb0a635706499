"""OIPs: the ascent (rises, batched = single, stays in [0, 1], revives zero maps), class
images, carving, the command's files and its bad-input messages (the cut models: test_model.py).

Runs on the session's tiny model with few steps and float32 (bfloat16 rounding would make the
batched-vs-single comparison depend on the batch size).
"""

from dataclasses import replace

import numpy as np
import pytest

F32 = dict(precision="float32")


@pytest.fixture(scope="module")
def x_test(mnist):
    from mnist_cnn.data import to_input

    return to_input(mnist[1][0][:2000])


def test_objective_rises_over_steps(tiny_model):
    from analysis.oip.ascent import Ascent, OIPConfig
    from analysis.oip.param import start_images

    maps = np.arange(0, 128, 16)
    start = start_images(maps, seed=0)
    values = []
    for steps in (5, 15, 40):
        ascent = Ascent(tiny_model, "conv_3", config=OIPConfig(steps=steps, chunk=5, **F32))
        values.append(ascent.run(start, maps, verbose=0)[1])
    values = np.array(values)
    assert values[2].mean() > values[1].mean() > values[0].mean()
    assert (values[2] >= values[0]).mean() >= 0.75


def test_batched_equals_single_map_run(tiny_model):
    from analysis.oip.ascent import OIPConfig
    from analysis.oip.compute import compute_oips

    config = OIPConfig(steps=20, chunk=10, **F32)
    batch = compute_oips(tiny_model, "conv_2", [3, 17, 40], config, seed=5, verbose=0)
    single = compute_oips(tiny_model, "conv_2", [17], config, seed=5, verbose=0)
    np.testing.assert_allclose(batch["images"][1], single["images"][0], atol=1e-4)
    np.testing.assert_allclose(batch["activation"][1], single["activation"][0], rtol=1e-4,
                               atol=1e-5)
    other_seed = compute_oips(tiny_model, "conv_2", [17], config, seed=6, verbose=0)
    assert np.abs(other_seed["images"][0] - single["images"][0]).max() > 0.05


@pytest.mark.parametrize("param", ["clip", "sigmoid", "fourier"])
def test_images_stay_in_unit_range(tiny_model, param):
    from analysis.oip.ascent import OIPConfig
    from analysis.oip.compute import compute_oips

    config = OIPConfig(steps=15, chunk=15, lr=0.5, param=param, tv=0.1, l2=0.1, jitter=2)
    r = compute_oips(tiny_model, "conv_1", [0, 7], config, seed=1, verbose=0)
    assert r["images"].shape == (2, 28, 28) and r["images"].dtype == np.float32
    assert r["images"].min() >= 0.0 and r["images"].max() <= 1.0
    assert (r["activation"] > r["start_activation"]).all()


def test_map_at_zero_at_the_start_ends_positive(tiny_model, x_test):
    from analysis.oip.ascent import Ascent, OIPConfig
    from analysis.oip.compute import data_maximum
    from analysis.oip.param import start_images

    ascent = Ascent(tiny_model, "conv_3", config=OIPConfig(steps=60, **F32))
    maps = np.arange(128)
    start = start_images(maps, seed=0)
    at_zero = maps[(ascent.measure(start, maps) <= 0) & (data_maximum(ascent, x_test, maps) > 0)]
    assert len(at_zero) >= 2, "the test needs maps that start at zero"
    chosen = at_zero[:6]
    _, activation = ascent.run(start[chosen], chosen, verbose=0)
    assert (activation > 0).all(), dict(zip(chosen.tolist(), activation.tolist()))


def test_data_maximum_matches_feature_maps(tiny_model, x_test):
    from analysis.oip.ascent import Ascent
    from analysis.oip.compute import data_maximum
    from mnist_cnn.model import sub_model

    maps = np.array([0, 9, 33])
    got = data_maximum(Ascent(tiny_model, "conv_2"), x_test[:500], maps, batch_size=128)
    expected = np.asarray(sub_model(tiny_model, ["conv_2"])([x_test[:500]])).mean(axis=(1, 2)).max(0)
    np.testing.assert_allclose(got, expected[maps], rtol=1e-4)


def test_class_image_and_carving(tiny_model, x_test, mnist):
    from analysis.oip.compute import CLASS_IMAGE_CONFIG, carve, class_images

    ci = class_images(tiny_model, [4, 9], replace(CLASS_IMAGE_CONFIG, steps=40, **F32))
    assert list(ci["predicted"]) == [4, 9]
    assert (ci["probability"] > 0.9).all()
    image = x_test[np.flatnonzero(mnist[1][1][:2000] == 4)[0]]
    carved = carve(tiny_model, image, [5, 60])
    assert carved["after"].shape == (2, 28, 28)
    assert (carved["activation_after"] > carved["activation_before"]).all()
    assert 0 < np.abs(carved["after"] - carved["before"]).mean() < 0.2  # still the same image


def test_command_writes_png_and_npz(tiny_model_path, tmp_path, capsys):
    from mnist_cnn.cli import main

    out = tmp_path / "oip"
    rc = main(["oip", "--layer", "conv_3", "--steps", "10", "--maps", "0,5,17",
               "--model", str(tiny_model_path), "--out", str(out)])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["conv_3.npz", "conv_3.png"]
    with np.load(out / "conv_3.npz") as z:
        assert z["images"].shape == (3, 28, 28)
        assert list(z["maps"]) == [0, 5, 17]
        assert z["activation"].shape == z["data_max"].shape == (3,)
        assert 0 <= z["images"].min() and z["images"].max() <= 1
    printed = capsys.readouterr().out
    assert "conv_3: 3 OIPs, 10 steps" in printed and "above the largest test-image" in printed


BAD_OIP_ARGUMENTS = [
    (["--layer", "conv_9"], "--layer: invalid choice: 'conv_9'"),
    (["--layer", "conv_3", "--maps", "0,128"], "--maps: index 128 is out of range for conv_3"),
    (["--layer", "conv_1", "--maps", "-1"], "index -1 is out of range for conv_1"),
    (["--layer", "conv_3", "--steps", "0"], "--steps: must be > 0, got 0"),
    (["--layer", "conv_3", "--steps", "ten"], "--steps: expected an integer, got 'ten'"),
    (["--layer", "conv_3", "--maps", "a,b"], "--maps: expected comma-separated integers"),
    (["--layer", "conv_3", "--seed", "x"], "--seed: expected an integer, got 'x'"),
    (["--layer", "conv_3", "--precision", "f16"], "--precision: invalid choice: 'f16'"),
    (["--layer", "conv_3", "--model", "/nonexistent.keras"], "no model at /nonexistent.keras"),
]


@pytest.fixture(scope="module")
def bad_oip_results(cli_batch):
    return cli_batch([["oip", *args] for args, _ in BAD_OIP_ARGUMENTS])


@pytest.mark.parametrize("case", range(len(BAD_OIP_ARGUMENTS)),
                         ids=[" ".join(args) for args, _ in BAD_OIP_ARGUMENTS])
def test_bad_input_is_one_line_before_tensorflow(case, bad_oip_results):
    expected, result = BAD_OIP_ARGUMENTS[case][1], bad_oip_results[case]
    assert result["rc"] == 2
    lines = result["stderr"].strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result["stderr"]
    assert not result["tensorflow"]


def test_position_and_centre_objectives(tiny_model):
    from analysis.oip.ascent import Ascent, OIPConfig
    from analysis.oip.objectives import map_mean, map_position
    from analysis.oip.param import start_images

    maps = np.array([2, 30])
    start = start_images(maps, seed=3)
    config = OIPConfig(steps=20, chunk=20, **F32)
    for objective in (map_position(5, 5), map_mean(border=2)):
        ascent = Ascent(tiny_model, "conv_2", objective=objective, config=config)
        before = ascent.measure(start, maps)
        _, after = ascent.run(start, maps, verbose=0)
        assert (after > before).all() and (after > 0).all()


def test_penalties_and_progress_callbacks(tiny_model):
    from analysis.oip.ascent import Ascent, OIPConfig
    from analysis.oip.objectives import penalties
    from analysis.oip.param import start_images

    assert penalties() == [] and [p.name for p in penalties(tv=0.5, l2=0.1)] == ["tv", "l2"]
    flat = np.full((1, 28, 28), 0.5, np.float32)
    assert float(penalties(l2=2.0)[0](flat)[0]) == pytest.approx(0.5)  # 2 * mean(0.5 ** 2)
    assert float(penalties(tv=3.0)[0](flat)[0]) == 0.0  # a flat image has no variation
    seen = []
    ascent = Ascent(tiny_model, "conv_1", config=OIPConfig(steps=7, chunk=3, **F32))
    ascent.run(start_images([0], seed=0), [0], verbose=0, callbacks=[seen.append])
    assert seen == [3, 6, 7]  # steps done after each compiled chunk
