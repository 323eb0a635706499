"""`make bench`: the one timing helper and the table of sections (the sections themselves are
measurements; they run in `make bench`, not here)."""

import pytest

from mnist_cnn import bench
from mnist_cnn.config import EXPERIMENTS
from mnist_cnn.errors import UserError


def test_best_of_counts_only_the_calls_after_the_warm_up():
    calls, times = [], []
    best, first = bench.best_of(lambda: calls.append(1), repeats=3, warmup=1, times=times)
    assert len(calls) == len(times) == 4
    assert first == times[0] and best == min(times[1:])
    assert bench.best_of(lambda: None, repeats=1)[0] >= 0


def test_sections_and_their_key_numbers():
    assert list(bench.SECTIONS) == ["pipeline", "train", "analyze", "oip", "predict", "experiments",
                                   "fashion", "draw"]
    assert all(callable(f) for f in bench.SECTIONS.values())
    assert tuple(bench.KEY_NUMBERS) == EXPERIMENTS


def test_unknown_section_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results.json")
    with pytest.raises(UserError, match="unknown bench section .nope.; choose from pipeline, train, "):
        bench.run_bench(["train", "nope"], seeds=1)
    assert not (tmp_path / "results.json").exists()


def test_epoch_flops_agree_with_a_count_from_the_layer_shapes():
    """2 x kernel area x channels in x channels out x output positions per convolution, 2 x in
    x out per dense layer, x3 for forward + backward: the series' network, from its shapes."""
    from mnist_cnn.series import OUTPUT_SHAPES
    from mnist_cnn.flops import epoch_flops
    from mnist_cnn.model import build_model

    convs = [("conv_1", 1), ("conv_2", 32), ("conv_3", 64)]
    forward = sum(2 * 3 * 3 * c_in * OUTPUT_SHAPES[n][2] * OUTPUT_SHAPES[n][0] * OUTPUT_SHAPES[n][1]
                  for n, c_in in convs)
    forward += 2 * OUTPUT_SHAPES["flatten"][0] * OUTPUT_SHAPES["dense_1"][0]
    forward += 2 * OUTPUT_SHAPES["dense_1"][0] * OUTPUT_SHAPES["output"][0]
    expected = 3 * forward * 50_000
    counted = epoch_flops(build_model(), 50_000)
    assert abs(counted - expected) <= 0.01 * expected
    assert 0.9e12 < counted < 1.0e12  # the issue's ~0.96 TFLOP per 50,000-image epoch
