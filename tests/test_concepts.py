"""Concepts (issue #26): measurements on drawn images with known answers, Holm's correction,
TCAV on a planted concept and on noise, the probe's random-weights control, the command."""

import numpy as np
import pytest

from analysis.concepts.measure import measure, measure_cached

SIDE = 28


def _disc(r_out, r_in=0.0, centre=(14, 14)):
    rr, cc = np.mgrid[:SIDE, :SIDE]
    d = np.hypot(rr - centre[0], cc - centre[1])
    return ((d <= r_out) & (d > r_in)).astype(np.uint8) * 255


def test_ring_has_one_loop_and_no_endpoints():
    m = measure(_disc(8, 5)[None])
    assert m["loops"][0] == 1
    assert m["endpoints"][0] == 0
    assert m["area"][0] == (_disc(8, 5) > 0).sum()


def test_eight_has_two_loops():
    eight = np.maximum(_disc(6, 3.5, (8, 14)), _disc(7, 4, (20, 14)))
    m = measure(eight[None])
    assert m["loops"][0] == 2
    assert m["junctions"][0] >= 1


@pytest.mark.parametrize("w", [1, 2, 3, 4, 5])
def test_line_thickness_is_its_width(w):
    img = np.zeros((SIDE, SIDE), np.uint8)
    img[4:24, 10:10 + w] = 255
    m = measure(img[None])
    # half a pixel from the grid (odd or even width), a little more from the thinner line ends
    assert abs(m["thickness"][0] - w) <= 0.75
    assert m["width"][0] == w and m["height"][0] == 20
    assert m["loops"][0] == 0 and m["endpoints"][0] == 2
    assert abs(m["slant"][0]) < 1e-3


@pytest.mark.parametrize("angle", [-30, -15, 20, 35])
def test_sheared_bar_slant_is_its_angle(angle):
    rows = np.arange(4, 24)
    img = np.zeros((SIDE, SIDE), np.uint8)
    shear = np.tan(np.radians(angle))
    for r in rows:  # up is -row: a right lean moves the bar right as rows go up
        c = int(round(14 + shear * (14 - r)))
        img[r, c - 1:c + 2] = 255
    assert abs(measure(img[None])["slant"][0] - angle) < 3


def test_stack_gives_each_image_its_own_answer_and_empty_images_zero():
    ring, line = _disc(8, 5), np.zeros((SIDE, SIDE), np.uint8)
    line[4:24, 13:16] = 255
    stack = np.stack([ring, np.zeros_like(ring), line, ring])
    m = measure(stack)
    assert list(m["loops"]) == [1, 0, 0, 1]
    assert list(m["endpoints"]) == [0, 0, 2, 0]
    one = measure(line[None])
    assert all(m[k][2] == one[k][0] for k in m)
    assert all(m[k][1] == 0 for k in m)
    # float input in [0, 1] and a channel axis read the same as uint8
    f = measure((stack / 255.0).astype(np.float32)[..., None])
    assert all(np.array_equal(f[k], m[k]) for k in m)


def test_unknown_measurement_is_refused():
    with pytest.raises(ValueError, match="unknown measurement"):
        measure(np.zeros((1, SIDE, SIDE), np.uint8), names=("curliness",))


def test_cache_is_read_back(tmp_path):
    x = np.stack([_disc(8, 5), _disc(6)])
    first, cached = measure_cached(x, folder=tmp_path)
    assert not cached and len(list(tmp_path.glob("concepts-*.npz"))) == 1
    again, cached = measure_cached(x, names=("loops", "area"), folder=tmp_path)
    assert cached and list(again) == ["loops", "area"]
    assert np.array_equal(again["loops"], first["loops"])


def test_holm_on_a_hand_example():
    from analysis.concepts.stats import holm
    # sorted 0.005, 0.01, 0.03, 0.04 scaled by 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04; running max
    # keeps 0.06 for the last, so 0.03 and 0.04 are not rejected although both are below 0.05.
    adjusted, rejected = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert rejected.tolist() == [True, False, False, True]


def test_two_sided_p_counts_both_tails_and_the_observed():
    from analysis.concepts.stats import two_sided_p
    # null mean 2; score 4 is 2 away; 0 and 4 are as far -> (1 + 2) / (1 + 5)
    assert two_sided_p(4.0, np.array([0.0, 1, 2, 3, 4])) == pytest.approx(0.5)
