"""The Sobel control of the faithfulness checks is computed per image (issue 27)."""

import numpy as np
from scipy import ndimage

from analysis.attribution.faithfulness import sobel_map


def _reference(image):
    gy = ndimage.sobel(image, axis=0, mode="constant")
    gx = ndimage.sobel(image, axis=1, mode="constant")
    return np.hypot(gx, gy)


def test_an_images_edge_map_is_its_own_sobel_map_whatever_its_batch():
    rng = np.random.default_rng(0)
    batch = rng.random((4, 12, 10, 1))
    maps = sobel_map(batch)
    for i in range(len(batch)):
        np.testing.assert_allclose(maps[i], _reference(batch[i, ..., 0]), rtol=1e-5, atol=1e-5)
    other = batch.copy()
    other[1] = rng.random(other[1].shape)  # a different neighbour must not change image 0's map
    np.testing.assert_array_equal(sobel_map(other)[0], maps[0])
    np.testing.assert_array_equal(sobel_map(batch[:1])[0], maps[0])
