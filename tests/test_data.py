"""Real image patches (pfode.data): shapes, range, determinism, disjoint sources."""
import numpy as np
import pytest

from pfode import data


@pytest.mark.parametrize("r", [1, 2, 4, 8, 16, 32, 64])
def test_shape_and_range(r):
    p = data.patches(["astronaut", "china"], 7, r, seed=3)
    assert p.shape == (7, 3 * r * r) and p.dtype == np.float64
    # threshold: exact by construction (u / 127.5 - 1 of 8-bit values, averaged)
    assert p.min() >= -1.0 and p.max() <= 1.0
    assert np.isfinite(p).all()


def test_full_range_reached_and_scaling():
    img = data.load_image("astronaut")
    assert img.shape == (512, 512, 3)
    assert img.min() == -1.0 and img.max() == 1.0          # 0 -> -1, 255 -> 1


def test_patch_is_block_mean_of_crop():
    r, crop, seed = 4, 64, 5
    pos = data.crop_positions(["coffee"], 3, crop, seed)
    p = data.patches(["coffee"], 3, r, crop=crop, seed=seed)
    img = data.load_image("coffee")
    for (i, y, x), flat in zip(pos, p):
        block = img[y:y + crop, x:x + crop]
        f = crop // r
        want = np.array([[block[a * f:(a + 1) * f, b * f:(b + 1) * f].mean(axis=(0, 1))
                          for b in range(r)] for a in range(r)])
        np.testing.assert_allclose(data.to_image(flat, r), (want + 1) / 2, atol=1e-12)


def test_same_crops_at_every_resolution():
    """Averaging the side-8 patch down to side 2 gives the side-2 patch: one set of scenes."""
    p8 = data.patches(["rocket", "flower"], 5, 8, seed=1)
    p2 = data.patches(["rocket", "flower"], 5, 2, seed=1)
    down = p8.reshape(5, 2, 4, 2, 4, 3).mean(axis=(2, 4)).reshape(5, -1)
    np.testing.assert_allclose(down, p2, atol=1e-12)


def test_deterministic_and_seed_dependent():
    a = data.patch_split(4, 20, 10, seed=7)
    b = data.patch_split(4, 20, 10, seed=7)
    c = data.patch_split(4, 20, 10, seed=8)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.train, c.train)


def test_train_and_test_disjoint_by_source_image():
    split = data.patch_split(2, 30, 12, seed=0)
    assert split.train.shape == (30, 12) and split.test.shape == (12, 12)
    assert not set(split.train_images) & set(split.test_images)
    assert set(split.train_images) | set(split.test_images) <= set(data.SOURCES)
    assert split.train_source.shape == (30,) and split.test_source.shape == (12,)
    assert set(split.test_source.tolist()) == set(range(len(split.test_images)))
    # the split draws the same patches as patches() with the split's own seeds
    again = data.patch_split(2, 30, 12, seed=0)
    np.testing.assert_array_equal(again.test, split.test)
    # no held-out patch coincides with a training patch
    d = np.abs(split.test[:, None, :] - split.train[None]).max(-1)
    assert d.min() > 0
    with pytest.raises(ValueError, match="disjoint"):
        data.patch_split(2, 4, 4, train_images=["china", "coffee"], test_images=["china"])


def test_patches_spread_over_images():
    pos = data.crop_positions(["coffee", "chelsea", "rocket"], 10, 64, 0)
    counts = np.bincount(pos[:, 0], minlength=3)
    assert counts.tolist() == [4, 3, 3]


@pytest.mark.parametrize("kwargs, match", [
    (dict(names=["nope"], num=2, r=2), "unknown image"),
    (dict(names=["coffee"], num=2, r=3), "divide"),
    (dict(names=["coffee"], num=0, r=2), "num"),
    (dict(names=["coffee"], num=2, r=2, crop=1000), "larger than image"),
    (dict(names=[], num=2, r=2), "at least one"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.patches(**kwargs)
