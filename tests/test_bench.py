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
