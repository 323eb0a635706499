"""Class comparison: statistics, the ranking on cases with a known answer, probe, ablation."""

import numpy as np
import pytest

from analysis import compare


def constructed_scores(n=400, seed=0):
    """Per-image scores of 6 maps; map 3 separates best, then map 1 (reversed), then map 4."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, (n, 6))
    b = rng.normal(0.0, 1.0, (n, 6))
    a[:, 3] += 6.0   # almost perfectly higher on class a
    b[:, 1] += 3.0   # clearly higher on class b (AUC near 0)
    a[:, 4] += 1.0   # moderately higher on class a
    return a, b


def test_ranking_recovers_the_known_order():
    a, b = constructed_scores()
    ranking = compare.rank_maps(a, b)
    assert list(ranking[:3]) == [3, 1, 4]
    assert sorted(ranking) == list(range(6))
    e = compare.effect_sizes(a, b)
    assert e["auc"][3] > 0.99 and e["auc"][1] < 0.05 and 0.7 < e["auc"][4] < 0.85
    assert np.all(e["separation"][[0, 2, 5]] < 0.15)
    assert e["cohens_d"][3] > 5 and e["cohens_d"][1] < -2


def test_auc_is_the_mann_whitney_probability():
    a = np.array([[3.0], [4.0], [1.0]])
    b = np.array([[2.0], [2.0]])
    # pairs where a > b: 3>2 twice, 4>2 twice, 1>2 never -> 4 of 6
    assert compare.effect_sizes(a, b)["auc"][0] == pytest.approx(4 / 6)


def test_dead_map_separates_nothing():
    a, b = np.zeros((10, 2)), np.zeros((12, 2))
    a[:, 1], b[:, 1] = 1.0, 0.0
    e = compare.effect_sizes(a, b)
    assert e["auc"][0] == 0.5 and e["cohens_d"][0] == 0 and e["separation"][0] == 0
    assert list(compare.rank_maps(a, b)) == [1, 0]


def test_class_statistics_on_constructed_maps():
    maps = np.zeros((4, 2, 2, 3), np.float32)
    maps[0, 0, 0, 0] = 4.0          # map 0 active in 1 of 4 images
    maps[:, :, :, 1] = 1.0          # map 1 active everywhere, mean 1
    s = compare.class_statistics(maps)
    np.testing.assert_allclose(s["mean_activation"], [4.0 / 16, 1.0, 0.0])
    np.testing.assert_allclose(s["active_fraction"], [0.25, 1.0, 0.0])
    assert s["mean_map"].shape == (2, 2, 3) and s["mean_map"][0, 0, 0] == 1.0


def test_most_confused_with_reads_both_directions():
    cm = np.diag([100] * 10)
    cm[4, 9], cm[9, 4], cm[4, 6] = 3, 5, 6     # 4<->9: 8 in total, 4<->6: 6
    assert compare.most_confused_with(cm, 4) == 9
    assert compare.most_confused_with(np.diag([5] * 10), 0) == 1  # no confusions: smallest other


def test_ranking_table_rows():
    a, b = constructed_scores()
    rows = compare.ranking_table(a, b)
    assert [r["rank"] for r in rows] == list(range(1, 7)) and rows[0]["map"] == 3


def test_probe_separable_vs_identical_classes():
    rng = np.random.default_rng(1)
    a = rng.random((120, 3, 3, 8)).astype(np.float32)
    b = rng.random((120, 3, 3, 8)).astype(np.float32)
    b_sep = b.copy()
    b_sep[..., 5] += 1.0  # only map 5 differs
    p = compare.probe_accuracy(a, b_sep, top_k=(1,), folds=3)
    assert p["all_features"] > 0.95 and p["top_k"][1] > 0.95 and p["n_features"] == 72
    chance = compare.probe_accuracy(a, b, top_k=(1,), folds=3)
    assert chance["all_features"] < 0.7 and chance["top_k"][1] < 0.7


def test_ablation_zeroes_the_ranked_maps_and_hurts_only_when_they_matter():
    """A fake head that reads only map 0: zeroing map 0 must break it, random maps mostly not."""
    rng = np.random.default_rng(2)
    a = rng.random((50, 3, 3, 8)).astype(np.float32) + 0.1
    b = rng.random((50, 3, 3, 8)).astype(np.float32) + 0.1
    b[..., 0] = 0.0
    seen = []

    def head(maps):
        seen.append(maps)
        p = np.zeros((len(maps), 10))
        p[:, 4] = maps[..., 0].mean(axis=(1, 2))   # class 4 when map 0 is on
        p[:, 9] = 0.05                              # else class 9
        return p

    ranking = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    r = compare.ablation(head, a, b, 4, 9, ranking, ks=(1, 2), random_draws=4, seed=0)
    assert r["baseline"]["accuracy_a"] == 1.0 and r["baseline"]["accuracy_b"] == 1.0
    assert r["rows"][0]["ranked_maps"] == [0] and r["rows"][0]["ranked_accuracy_a"] == 0.0
    assert r["rows"][0]["random_accuracy_a_mean"] > 0.5
    # calls: baseline (2), then for k=1 ranked (2) -> the 3rd and 4th inputs have map 0 zeroed
    assert np.all(seen[2][..., 0] == 0) and np.all(seen[3][..., 0] == 0)
    assert np.any(seen[2][..., 1:] != 0)
    assert np.all(seen[0][..., 0] == a[..., 0])  # the baseline saw the unmodified maps


def test_zero_maps_zeroes_exactly_the_chosen_maps():
    maps = np.random.default_rng(3).random((64, 3, 3, 128)).astype(np.float32)
    chosen = [3, 17, 99]
    ablated = compare.zero_maps(maps, chosen)
    assert np.all(ablated[..., chosen] == 0)
    others = np.setdiff1d(np.arange(128), chosen)
    np.testing.assert_array_equal(ablated[..., others], maps[..., others])
    assert np.any(maps[..., chosen] != 0)  # the input had something to remove, and is untouched
