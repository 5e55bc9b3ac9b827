"""Real image patches from photographs that ship inside scikit-image and scikit-learn.

The book's "real distribution" ``q`` (Assumptions 4.1–4.2) is a set of held-out patches of
natural photographs, and the training set of the generation distribution ``p_G`` (a mixture
of Gaussian neighbors, Assumption 4.3) is a disjoint set of patches of *other* photographs.
No file is downloaded: every source image is bundled with ``skimage.data`` or
``sklearn.datasets.load_sample_images``.

A patch is a ``crop x crop`` square of a photograph (position drawn from a seeded
generator) averaged down to ``r x r`` RGB pixels by block means, flattened in ``(r, r, 3)``
order and scaled to ``[-1, 1]``: a point of ``R^n`` with ``n = 3 r^2``. The crop positions
do not depend on ``r``, so the same seed gives the *same* crops at every resolution: the
dimension sweep looks at one set of scenes with more and more pixels (the paper's view of an
image as finitely many samples of a continuous picture, §D.5).

Sources (all colour photographs; ``cat`` is the same picture as ``chelsea`` and the two
``stereo_motorcycle`` views show one scene, so each scene appears once):

====================  ==========================================  ===========
name                  loader                                       size
====================  ==========================================  ===========
astronaut             ``skimage.data.astronaut``                   512 x 512
coffee                ``skimage.data.coffee``                      400 x 600
chelsea               ``skimage.data.chelsea``                     300 x 451
rocket                ``skimage.data.rocket``                      427 x 640
motorcycle            ``skimage.data.stereo_motorcycle()[0]``      500 x 741
immunohistochemistry  ``skimage.data.immunohistochemistry``        512 x 512
china                 ``sklearn ... load_sample_images`` (china)   427 x 640
flower                ``sklearn ... load_sample_images`` (flower)  427 x 640
====================  ==========================================  ===========
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple, Sequence

import numpy as np

__all__ = [
    "SOURCES",
    "TRAIN_IMAGES",
    "TEST_IMAGES",
    "load_image",
    "crop_positions",
    "patches",
    "patch_split",
    "to_image",
    "PatchSplit",
]

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry",
           "china", "flower")
"""Names accepted by :func:`load_image`."""

TRAIN_IMAGES = ("coffee", "chelsea", "rocket", "motorcycle", "china", "immunohistochemistry")
"""Default source photographs of the training patches (the means of ``p_G``)."""

TEST_IMAGES = ("astronaut", "flower")
"""Default source photographs of the held-out patches (samples of ``q``)."""


def _sample_image(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    for fname, img in zip(data.filenames, data.images):
        if fname.endswith(f"{name}.jpg"):
            return img
    raise ValueError(f"scikit-learn has no sample image {name!r}")  # pragma: no cover


@lru_cache(maxsize=None)
def _load_uint8(name: str) -> np.ndarray:
    if name not in SOURCES:
        raise ValueError(f"unknown image {name!r}; choose from {', '.join(SOURCES)}")
    if name in ("china", "flower"):
        img = _sample_image(name)
    else:
        import skimage.data

        img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:  # pragma: no cover
        raise RuntimeError(f"image {name!r} is not 8-bit RGB: {img.shape} {img.dtype}")
    img.setflags(write=False)
    return img


def load_image(name: str) -> np.ndarray:
    """The photograph ``name`` as float64 ``(H, W, 3)`` with values in ``[-1, 1]``.

    8-bit values ``u`` map to ``u / 127.5 - 1``, so 0 → −1 and 255 → 1 (Assumption 4.1).
    """
    if not isinstance(name, str) or name not in SOURCES:
        raise ValueError(f"unknown image name {name!r}; choose from {', '.join(SOURCES)}")
    return _load_uint8(name).astype(np.float64) / 127.5 - 1.0


def _check_int(name: str, value, lower: int) -> int:
    from ._checks import check_int
    return check_int(value, name, lower=lower)


def _check_names(names: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names:
        raise ValueError(f"{what} must name at least one image")
    for nm in names:
        if not isinstance(nm, str) or nm not in SOURCES:
            raise ValueError(f"unknown image {nm!r} in {what}; choose from {', '.join(SOURCES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names an image twice: {names}")
    return names


def crop_positions(names: Sequence[str], num: int, crop: int = 64, seed: int = 0) -> np.ndarray:
    """``num`` crop positions ``(image index, row, col)``, shape ``(num, 3)``, int64.

    Patches are spread evenly over the images (image ``i`` gets ``num // m`` patches, the
    first ``num % m`` images one more) and each position is uniform over the valid top-left
    corners, drawn from ``np.random.default_rng(seed)``. The positions depend on
    ``(names, num, crop, seed)`` only — not on the output resolution.
    """
    names = _check_names(names, "names")
    num = _check_int("num", num, 1)
    crop = _check_int("crop", crop, 1)
    rng = np.random.default_rng(seed)
    m = len(names)
    counts = [num // m + (1 if i < num % m else 0) for i in range(m)]
    out = []
    for i, (nm, c) in enumerate(zip(names, counts)):
        H, W, _ = _load_uint8(nm).shape
        if crop > min(H, W):
            raise ValueError(f"crop {crop} is larger than image {nm!r} ({H} x {W})")
        rows = rng.integers(0, H - crop + 1, size=c)
        cols = rng.integers(0, W - crop + 1, size=c)
        out.append(np.stack([np.full(c, i), rows, cols], axis=1))
    return np.concatenate(out, axis=0).astype(np.int64)


def patches(names: Sequence[str], num: int, r: int, *, crop: int = 64, seed: int = 0,
            dtype=np.float64) -> np.ndarray:
    """``num`` patches of the photographs ``names`` at resolution ``r x r`` RGB.

    Returns ``(num, 3 r^2)`` in ``[-1, 1]``: the ``crop x crop`` squares at
    :func:`crop_positions`, averaged over ``(crop / r) x (crop / r)`` pixel blocks
    (``r`` must divide ``crop``) and flattened in ``(r, r, 3)`` order (see :func:`to_image`).
    Deterministic in ``(names, num, r, crop, seed)``.
    """
    names = _check_names(names, "names")
    r = _check_int("r", r, 1)
    crop = _check_int("crop", crop, 1)
    if crop % r:
        raise ValueError(f"r = {r} must divide crop = {crop}")
    return _patches_at(names, crop_positions(names, num, crop, seed), r, crop, dtype)


def _patches_at(names, pos, r, crop, dtype):
    f = crop // r
    imgs = [load_image(nm) for nm in names]
    out = np.empty((len(pos), r * r * 3), dtype=np.float64)                       # (num, n)
    for j, (i, y, x) in enumerate(pos):
        block = imgs[i][y:y + crop, x:x + crop]                                   # (crop, crop, 3)
        out[j] = block.reshape(r, f, r, f, 3).mean(axis=(1, 3)).reshape(-1)
    np.clip(out, -1.0, 1.0, out=out)        # block means of values in [-1, 1]; guard rounding
    return out.astype(dtype, copy=False)


def to_image(flat: np.ndarray, r: int | None = None) -> np.ndarray:
    """Patch(es) ``(..., 3 r^2)`` back to images ``(..., r, r, 3)`` in ``[0, 1]`` for display."""
    flat = np.asarray(flat)
    n = flat.shape[-1]
    if r is None:
        r = int(round((n / 3) ** 0.5))
    if 3 * r * r != n:
        raise ValueError(f"last axis {n} is not 3 r^2 for r = {r}")
    return (flat.reshape(*flat.shape[:-1], r, r, 3) + 1.0) / 2.0


class PatchSplit(NamedTuple):
    """Training patches (means of ``p_G``) and held-out patches (samples of ``q``)."""

    train: np.ndarray
    """``(num_train, n)`` patches of the training photographs."""
    test: np.ndarray
    """``(num_test, n)`` patches of the held-out photographs."""
    train_images: tuple[str, ...]
    test_images: tuple[str, ...]
    train_source: np.ndarray
    """``(num_train,)`` index into ``train_images`` of each training patch's photograph."""
    test_source: np.ndarray
    """``(num_test,)`` index into ``test_images`` of each held-out patch's photograph."""


def patch_split(r: int, num_train: int, num_test: int, *, crop: int = 64, seed: int = 0,
                train_images: Sequence[str] = TRAIN_IMAGES,
                test_images: Sequence[str] = TEST_IMAGES, dtype=np.float64) -> PatchSplit:
    """Training and held-out patches from *disjoint* sets of photographs.

    The two sets of source images must not share a name (``ValueError`` otherwise), so no
    held-out patch overlaps a training patch. The two draws use independent streams derived
    from ``seed`` by ``np.random.SeedSequence(seed).spawn(2)``.
    """
    train_images = _check_names(train_images, "train_images")
    test_images = _check_names(test_images, "test_images")
    common = set(train_images) & set(test_images)
    if common:
        raise ValueError(f"train and test images must be disjoint; both name {sorted(common)}")
    s_train, s_test = np.random.SeedSequence(seed).spawn(2)
    seed_train = int(s_train.generate_state(1)[0])
    seed_test = int(s_test.generate_state(1)[0])
    r = _check_int("r", r, 1)
    crop = _check_int("crop", crop, 1)
    if crop % r:
        raise ValueError(f"r = {r} must divide crop = {crop}")
    pos_train = crop_positions(train_images, num_train, crop, seed_train)
    pos_test = crop_positions(test_images, num_test, crop, seed_test)
    train = _patches_at(train_images, pos_train, r, crop, dtype)
    test = _patches_at(test_images, pos_test, r, crop, dtype)
    return PatchSplit(train, test, train_images, test_images, pos_train[:, 0], pos_test[:, 0])
