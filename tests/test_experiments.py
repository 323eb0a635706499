"""The filter experiments: lines generator, Prewitt scoring, Hungarian matching, single-image
learning, and each experiment writing its folder (shrunk sizes, a few seconds each)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis import experiments
from analysis.experiments import lines, single_image, two_runs
from analysis.experiments.filters import correlation_matrix, match_filters, pearson


def test_lines_shapes_balance_and_determinism():
    x, y = lines.make_lines(per_class=50, size=30, seed=3)
    assert x.shape == (100, 30, 30) and x.dtype == np.float32 and y.shape == (100,)
    assert np.bincount(y).tolist() == [50, 50]
    assert 0 <= x.min() and x.max() <= 1
    x2, y2 = lines.make_lines(per_class=50, size=30, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, lines.make_lines(per_class=50, size=30, seed=4)[0])


def test_lines_are_oriented_as_labelled():
    x, y = lines.make_lines(per_class=40, size=30, seed=0, noise=0.0)
    rows_lit = (x > 0.5).any(axis=2).sum(axis=1)  # how many rows a line touches
    cols_lit = (x > 0.5).any(axis=1).sum(axis=1)
    assert np.all(rows_lit[y == 0] <= 3) and np.all(cols_lit[y == 0] >= 7)   # horizontal: thin, long
    assert np.all(cols_lit[y == 1] <= 3) and np.all(rows_lit[y == 1] >= 7)   # vertical


def test_prewitt_scores_name_the_operators():
    h, v = lines.prewitt_templates(7)
    kernels = np.stack([h[-1], v[12], np.random.default_rng(0).normal(size=(7, 7))])
    s = lines.prewitt_scores(kernels)
    assert s["kinds"][:2] == ["horizontal", "vertical"]
    assert s["best_h"][0] == pytest.approx(1.0) and s["best_v"][1] == pytest.approx(1.0)
    assert s["best_v"][0] < 0.5 and s["best_h"][1] < 0.5
    assert lines.prewitt_scores(-kernels[:1])["sign_h"][0] == -1  # opposite polarity, same detector


def test_hungarian_matching_recovers_a_known_permutation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3, 1, 32))
    perm = rng.permutation(32)
    b = a[..., perm] * rng.uniform(0.5, 2, 32) + rng.normal(0, 0.1, a.shape)  # rescaled, noisy copies
    corr = correlation_matrix(a.reshape(9, 32), b.reshape(9, 32))
    found, matched = match_filters(corr)
    np.testing.assert_array_equal(perm[found], np.arange(32))  # A's filter i went to B's copy of it
    assert matched.min() > 0.9
    stats = two_runs.matching_stats(correlation_matrix(a.reshape(9, 32), a.reshape(9, 32)))
    assert stats["fixed_points"] == 32 and stats["near_identical"] == 32 and stats["mean_displacement"] == 0


def test_correlation_of_dead_units_is_zero():
    a = np.column_stack([np.arange(5.0), np.zeros(5)])
    assert correlation_matrix(a, a)[1].tolist() == [0.0, 0.0]
    assert pearson(np.arange(5.0), 2 * np.arange(5.0) + 1) == pytest.approx(1.0)


def test_single_image_filters_move_towards_the_image(mnist):
    (x, y), _ = mnist
    image = x[single_image.first_image_of(x, y)].astype("float32") / 255
    result = single_image.train_on_one_image(image, 4, steps=10, seed=0)
    r = np.abs(result["correlation"])
    assert result["filters"].shape == (11, 5, 28, 28)
    assert r[0].max() < 0.15                    # Glorot noise: unrelated to the image
    assert r[-1].mean() > r[0].mean() + 0.2     # after 10 steps, clearly image-like
    assert result["loss"][-1] < result["loss"][0]


@pytest.mark.heavy
def test_lines_and_single_image_write_their_folders(tmp_path, capsys):
    s = experiments.run_one("lines", tmp_path, seed=1, per_class=60, epochs=2)
    folder = tmp_path / "lines"
    assert {p.name for p in folder.iterdir()} == {"kernels_before_after.png", "feature_maps.png", "kernels.gif",
                                                 "lines.npz", "summary.json"}
    assert json.loads((folder / "summary.json").read_text())["seconds"] == s["seconds"]
    with np.load(folder / "lines.npz") as z:
        assert z["kernels"].shape == (3, 8, 7, 7)
    from PIL import Image
    assert Image.open(folder / "kernels.gif").n_frames == 3
    experiments.run_one("single-image", tmp_path, seed=0, steps=3)
    assert (tmp_path / "single-image" / "filters.png").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


@pytest.mark.heavy
def test_two_runs_compare_tiny_trainings(tmp_path):
    s = experiments.run_one("two-runs", tmp_path, seed=0, epochs=1, train_limit=1000,
                            test_images=500)
    assert s["train_images"] == 1000 and len(s["test_accuracy"]) == 2
    from mnist_cnn.config import TrainConfig

    recipe = TrainConfig()  # the recipe as it is, warm-up included (without it conv_1 maps die)
    assert (s["batch_size"], s["lr"], s["warmup_epochs"]) == (recipe.batch_size, recipe.lr,
                                                              recipe.warmup_epochs)
    m = s["matchings"]
    assert m["conv1_kernels"]["filters"] == 32 and m["conv3_activations"]["filters"] == 128
    assert s["conv1_activation_images"] == s["conv3_activation_images"] == 500
    with np.load(tmp_path / "two-runs" / "two_runs.npz") as z:
        assert sorted(z["conv1_kernels_perm"]) == list(range(32))
    for name in ("matched_conv1_kernels.png", "matched_correlations.png", "conv1_before_after.png",
                 "weight_histograms.png"):
        assert (tmp_path / "two-runs" / name).is_file()


def test_reference_experiment_matches_keras(tmp_path):
    absent = tmp_path / "absent.keras"  # no trained model: the untrained architecture
    s = experiments.run_one("reference", tmp_path, seed=0, images=8, model=absent)
    assert s["model"].startswith("untrained")
    assert max(s["max_abs_diff_forward"].values()) < 1e-4 and s["max_abs_diff_input_gradient"] < 1e-4
    assert s["measured_equals_predicted"]


def test_unknown_experiment_lists_the_valid_ones():
    r = subprocess.run([sys.executable, "-m", "mnist_cnn", "experiment", "prewitt"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    for name in experiments.MODULES:
        assert name in r.stderr
    r = subprocess.run([sys.executable, "-m", "mnist_cnn", "experiment", "lines", "--seed", "-1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--seed" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_every_experiment_name_has_a_module():
    import importlib

    from mnist_cnn.config import EXPERIMENTS
    assert tuple(experiments.MODULES) == EXPERIMENTS  # the registry is built from the names
    for module in experiments.MODULES.values():
        assert callable(importlib.import_module(module).run)


def test_kernel_grid_draws_each_kernel_in_its_own_range():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.experiments.filters import draw_kernel_grid

    kernels = np.stack([np.arange(9.0).reshape(3, 3) - 4, np.full((3, 3), 10.0)])
    fig, ax = plt.subplots()
    draw_kernel_grid(ax, kernels, ["a", "b"], cols=2, scale=2)
    image = np.ma.filled(ax.images[0].get_array(), np.nan)
    np.testing.assert_allclose(image[:6:2, :6:2], kernels[0] / 4)  # tile 1: its max |w| is 4
    np.testing.assert_allclose(image[:6:2, 7:13:2], 1.0)  # tile 2, after a 1-pixel gap: 10 / 10
    assert np.isnan(image[:, 6]).all()
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    plt.close(fig)
