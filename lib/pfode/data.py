"""Real image patches from photographs that ship inside scikit-image and scikit-learn.

The book's "real distribution" ``q`` (the paper's Assumptions 4.1–4.2, [book: asm-ch7-cube],
[book: asm-ch7-positive]) is a set of held-out patches of natural photographs, and the training
set of the generation distribution ``p_G`` (a mixture of Gaussian neighbors, Assumption 4.3,
[book: asm-ch7-neighbors]) is a disjoint set of patches of *other* photographs.
No file is downloaded: every source image is bundled with ``skimage.data`` or
``sklearn.datasets.load_sample_images``.

A patch is a ``crop x crop`` square of a photograph (position drawn from a seeded
generator) averaged down to ``r x r`` RGB pixels by block means, flattened in ``(r, r, 3)``
order and scaled to ``[-1, 1]``: a point of ``R^n`` with ``n = 3 r^2``. The crop positions
do not depend on ``r``, so the same seed gives the *same* crops at every resolution: the
dimension sweep looks at one set of scenes with more and more pixels (the paper's view of an
image as finitely many samples of a continuous picture, its §D.5; [book: ch-dimension-sweep]).

An image model takes the same pixels channels first: :func:`to_chw` and :func:`from_chw`
convert between the two orders, :func:`show` makes either displayable, and
:func:`trained_model_split` rebuilds the split a trained model saw from the data specification
recorded with it.

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

import sys
from collections.abc import Mapping
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
    "to_chw",
    "from_chw",
    "show",
    "trained_model_split",
    "ModelSplit",
    "digits_split",
]

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry",
           "china", "flower")
"""Names accepted by :func:`load_image`."""

TRAIN_IMAGES = ("coffee", "chelsea", "rocket", "motorcycle", "china", "immunohistochemistry")
"""Default source photographs of the training patches (the means of ``p_G``)."""

TEST_IMAGES = ("astronaut", "flower")
"""Default source photographs of the held-out patches (samples of ``q``)."""


def _sample_image(name: str) -> np.ndarray:
    from ._checks import require

    data = require("sklearn.datasets", f"the photograph {name!r}").load_sample_images()
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
        from ._checks import require

        skdata = require("skimage.data", f"the photograph {name!r}")
        img = skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)()
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:  # pragma: no cover
        raise RuntimeError(f"image {name!r} is not 8-bit RGB: {img.shape} {img.dtype}")
    img.setflags(write=False)
    return img


def load_image(name: str) -> np.ndarray:
    """The photograph ``name`` as float64 ``(H, W, 3)`` with values in ``[-1, 1]``.

    8-bit values ``u`` map to ``u / 127.5 - 1``, so 0 → −1 and 255 → 1 (Assumption 4.1,
    [book: asm-ch7-cube]).
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


def digits_split(num_train: int, num_test: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (pixel values 0–16) scaled to [-1, 1], in a random split:
    ``(train (num_train, 64), test (num_test, 64))``, disjoint, float64. The permutation is
    ``np.random.default_rng(seed).permutation(1797)``; the first ``num_train`` digits train,
    the next ``num_test`` are held out."""
    from ._checks import require
    num_train = _check_int("num_train", num_train, 1)
    num_test = _check_int("num_test", num_test, 0)
    digits = require("sklearn.datasets", "digits_split").load_digits().data / 8.0 - 1.0   # (1797, 64)
    if num_train + num_test > len(digits):
        raise ValueError(f"num_train + num_test must be at most {len(digits)} (the digits), got "
                         f"{num_train} + {num_test}")
    perm = np.random.default_rng(seed).permutation(len(digits))
    return digits[perm[:num_train]], digits[perm[num_train:num_train + num_test]]


# ---- the trained model's layout, display, and its data split ---------------------------------
def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _flat_side(flat, r, name: str) -> int:
    """The side ``r`` of flattened RGB patches ``flat`` ``(..., 3 r^2)``, checked."""
    if not (_is_tensor(flat) or isinstance(flat, np.ndarray)):
        raise TypeError(f"{name} must be a numpy array or a torch.Tensor of shape (..., 3 r^2), "
                        f"got {type(flat).__name__}")
    n = flat.shape[-1] if flat.ndim else 0
    if r is None:
        r = int(round((n / 3) ** 0.5))
    else:
        r = _check_int("r", r, 1)
    if flat.ndim == 0 or 3 * r * r != n:
        raise ValueError(f"{name} must have a last axis of 3 r^2 entries (r x r RGB pixels), got "
                         f"shape {tuple(flat.shape)}" + (f" for r = {r}" if r else ""))
    return r


def _permute_flat(flat, r: int, shape, axes):
    batch = tuple(flat.shape[:-1])
    axes = tuple(range(len(batch))) + tuple(len(batch) + a for a in axes)
    blocks = flat.reshape(*batch, *shape)
    if _is_tensor(flat):
        return blocks.permute(*axes).reshape(*batch, 3 * r * r).contiguous()
    return np.ascontiguousarray(blocks.transpose(axes).reshape(*batch, 3 * r * r))


def to_chw(flat, r: int | None = None):
    """Flattened patches from this module's ``(r, r, 3)`` order to the ``(3, r, r)`` order of an
    image model (channels first), still flattened: ``(..., 3 r^2) -> (..., 3 r^2)``.

    Entry ``(c, i, j)`` of the result, at index ``c r^2 + i r + j``, is pixel ``(i, j)``,
    channel ``c`` of the patch, at index ``3 (i r + j) + c`` of ``flat``. A pure permutation:
    same type (numpy or torch), dtype and values; ``r`` is inferred when not given.
    :func:`from_chw` is the inverse.
    """
    r = _flat_side(flat, r, "flat")
    return _permute_flat(flat, r, (r, r, 3), (2, 0, 1))


def from_chw(flat, r: int | None = None):
    """Inverse of :func:`to_chw`: flattened ``(3, r, r)`` patches back to ``(r, r, 3)`` order."""
    r = _flat_side(flat, r, "flat")
    return _permute_flat(flat, r, (3, r, r), (1, 2, 0))


LAYOUTS = ("image", "patch", "chw")
"""Layouts accepted by :func:`show`."""


def show(x, axs=None, *, layout: str = "image", r: int | None = None) -> np.ndarray:
    """Images with values in ``[-1, 1]`` as displayable arrays ``(..., h, w, 3)`` in ``[0, 1]``.

    ``x`` (numpy or torch) is a batch of images ``(..., h, w, 3)`` (``layout="image"``) or of
    flattened square patches ``(..., 3 r^2)``, in this module's ``(r, r, 3)`` order
    (``"patch"``) or in the model's ``(3, r, r)`` order (``"chw"``). Values are clipped to
    ``[-1, 1]`` (noise, say, overshoots) and mapped by ``(v + 1) / 2``, in float32 for float32
    input and in float64 otherwise.
    With ``axs`` (one matplotlib ``Axes`` per image, in an array of the batch shape, or one
    ``Axes`` for one image) each image is also drawn there, pixels as squares, without ticks.
    """
    from ._checks import check_choice

    check_choice(layout, "layout", LAYOUTS)
    if _is_tensor(x):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array or a torch.Tensor, got {type(x).__name__}")
    if layout == "chw":
        x = from_chw(x, r)
    if layout != "image":
        r = _flat_side(x, r, "x")
        x = x.reshape(*x.shape[:-1], r, r, 3)
    elif x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"x must have shape (..., h, w, 3) for layout 'image', got {x.shape}")
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    img = (np.clip(x.astype(dtype, copy=False), -1, 1) + dtype(1)) / dtype(2)    # (..., h, w, 3)
    if axs is not None:
        axes = np.asarray(axs, dtype=object)
        if axes.shape != img.shape[:-3]:
            raise ValueError(f"axs must hold one Axes per image: shape {img.shape[:-3]}, got "
                             f"{axes.shape}")
        for ax, im in zip(axes.reshape(-1), img.reshape(-1, *img.shape[-3:])):
            ax.imshow(im, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
    return img


TRAINING_LOG = "training_log.json"
"""File of a trained model's folder that records its training run and data specification."""

_SPEC_INTS = ("r", "crop", "num_train", "num_test", "data_seed")


class ModelSplit(NamedTuple):
    """The patches a model was trained on and the held-out patches of its data specification."""

    train: np.ndarray
    """``(num_train, 3 r^2)`` training patches, in this module's ``(r, r, 3)`` order."""
    test: np.ndarray
    """``(num_test, 3 r^2)`` held-out patches (other photographs), same order."""
    r: int
    """Patch side: the model's images are ``3 x r x r``."""
    train_images: tuple[str, ...]
    test_images: tuple[str, ...]
    spec: dict
    """The data specification, as stored under ``"data"`` in the training log."""
    log: dict
    """The whole training log (empty when the split was built from a specification)."""


def trained_model_split(source, *, min_test: int = 0) -> ModelSplit:
    """The data split of a model trained on photograph patches [book: ch-real-models-training].

    ``source`` is a model folder holding :data:`TRAINING_LOG` (or the path of that file),
    whose ``"data"`` entry is the specification; or the specification itself, a mapping with
    the integers ``r``, ``crop``, ``num_train``, ``num_test``, ``data_seed`` and optionally
    ``train_images`` and ``test_images`` (default :data:`TRAIN_IMAGES`, :data:`TEST_IMAGES`).
    The patches are :func:`patch_split` of that specification, so a model folder gives exactly
    the training set its model saw. ``min_test`` asks for at least that many held-out patches:
    above ``num_test`` that many are drawn instead (a new draw; the training set is the same).
    """
    import json
    from pathlib import Path

    log = {}
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            path = path / TRAINING_LOG
        if not path.is_file():
            raise FileNotFoundError(f"source {str(source)!r} is neither a model folder holding "
                                    f"{TRAINING_LOG} nor such a file")
        log = json.loads(path.read_text())
        if not isinstance(log, dict) or not isinstance(log.get("data"), dict):
            raise ValueError(f"source {str(path)!r} has no \"data\" entry (the patch specification)")
        spec = log["data"]
    elif isinstance(source, Mapping):
        spec = source
    else:
        raise TypeError(f"source must be a model folder, a {TRAINING_LOG} path or a data "
                        f"specification (a mapping), got {type(source).__name__}")
    unknown = set(spec) - set(_SPEC_INTS) - {"train_images", "test_images"}
    missing = [k for k in _SPEC_INTS if k not in spec]
    if unknown or missing:
        what = f"lacks {missing}" if missing else f"has unknown entries {sorted(unknown)}"
        raise ValueError(f"the data specification of source {what}; it needs "
                         f"{', '.join(_SPEC_INTS)} (and may name train_images, test_images)")
    ints = {k: _check_int(f"source[{k!r}]", spec[k], 0 if k == "data_seed" else 1) for k in _SPEC_INTS}
    min_test = _check_int("min_test", min_test, 0)
    train_images = _check_names(spec.get("train_images", TRAIN_IMAGES), "source['train_images']")
    test_images = _check_names(spec.get("test_images", TEST_IMAGES), "source['test_images']")
    split = patch_split(ints["r"], ints["num_train"], max(ints["num_test"], min_test),
                        crop=ints["crop"], seed=ints["data_seed"], train_images=train_images,
                        test_images=test_images)
    spec = dict(ints, train_images=list(train_images), test_images=list(test_images))
    return ModelSplit(split.train, split.test, ints["r"], split.train_images, split.test_images,
                      spec, log)
