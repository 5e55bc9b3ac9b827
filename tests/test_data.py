"""Real image patches (pfode.data): shapes, range, determinism, disjoint sources."""
import numpy as np
import torch
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
    for (_, y, x), flat in zip(pos, p):
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


# ---- the model's (3, r, r) layout -------------------------------------------------------------
def _labelled(batch, r):
    """Patches whose entry at pixel (i, j), channel c of patch b is the number b c i j."""
    flat = np.empty((batch, 3 * r * r))
    for b in range(batch):
        for i in range(r):
            for j in range(r):
                for c in range(3):
                    flat[b, 3 * (i * r + j) + c] = 1000 * b + 100 * c + 10 * i + j
    return flat


def test_to_chw_puts_each_entry_at_its_channel_first_index():
    r = 3
    flat = _labelled(2, r)
    out = data.to_chw(flat)
    assert out.shape == flat.shape and out.dtype == flat.dtype and out.flags.c_contiguous
    for b in range(2):
        for c in range(3):
            for i in range(r):
                for j in range(r):
                    assert out[b, c * r * r + i * r + j] == 1000 * b + 100 * c + 10 * i + j
    # the same as reshaping to (B, r, r, 3) and moving the channel axis first
    np.testing.assert_array_equal(out.reshape(2, 3, r, r), flat.reshape(2, r, r, 3).transpose(0, 3, 1, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_from_chw_inverts_to_chw_numpy_and_torch_batched(dtype):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 5, 3 * 4 * 4)).astype(dtype)   # (2, 5, n)
    y = data.to_chw(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(data.from_chw(y), x)
    np.testing.assert_array_equal(data.to_chw(data.from_chw(x)), x)
    # batched equals looped, and one patch (n,) works alone
    np.testing.assert_array_equal(y, np.stack([[data.to_chw(p) for p in row] for row in x]))
    # torch in, torch out, same values and dtype
    t = data.to_chw(torch.from_numpy(x))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.from_numpy(x).dtype
    np.testing.assert_array_equal(t.numpy(), y)
    np.testing.assert_array_equal(data.from_chw(t).numpy(), x)


def test_show_layouts_agree_and_clip():
    torch = pytest.importorskip("torch")
    r = 2
    flat = np.linspace(-3, 3, 4 * 3 * r * r).reshape(4, -1)                      # (4, n), overshoots
    want = (np.clip(flat.reshape(4, r, r, 3), -1, 1) + 1) / 2                    # (4, r, r, 3)
    np.testing.assert_array_equal(data.show(flat, layout="patch"), want)
    np.testing.assert_array_equal(data.show(data.to_chw(flat), layout="chw"), want)
    np.testing.assert_array_equal(data.show(torch.tensor(data.to_chw(flat)), layout="chw"), want)
    np.testing.assert_array_equal(data.show(flat.reshape(4, r, r, 3)), want)
    assert data.show(np.array([[[-5.0, 0.0, 5.0]]])).tolist() == [[[0.0, 0.5, 1.0]]]
    assert data.show(flat.astype(np.float32), layout="patch").dtype == np.float32
    assert data.show(flat, layout="patch").dtype == np.float64
    # without clipping the patch layout is to_image
    inside = np.clip(flat, -1, 1)
    np.testing.assert_array_equal(data.show(inside, layout="patch"), data.to_image(inside, r))


def test_show_draws_one_image_per_axes():
    from matplotlib.figure import Figure

    axs = Figure().subplots(1, 3)
    flat = np.random.default_rng(1).uniform(-1, 1, (3, 12))
    imgs = data.show(flat, axs, layout="patch")
    for ax, im in zip(axs, imgs):
        assert len(ax.images) == 1 and ax.get_xticks().size == 0 and ax.get_yticks().size == 0
        np.testing.assert_array_equal(ax.images[0].get_array(), im)
    ax = Figure().subplots()
    data.show(flat[0], ax, layout="patch")                                        # one image, one Axes
    assert len(ax.images) == 1
    with pytest.raises(ValueError, match="axs"):
        data.show(flat, axs[:2], layout="patch")


@pytest.mark.parametrize("call, err, match", [
    (lambda: data.to_chw(np.zeros((2, 10))), ValueError, "flat"),
    (lambda: data.to_chw(np.zeros(12), r=3), ValueError, "flat"),
    (lambda: data.to_chw([0.0] * 12), TypeError, "flat"),
    (lambda: data.from_chw(np.zeros(12), r=0), ValueError, "r must"),
    (lambda: data.show(np.zeros((2, 12)), layout="hwc"), ValueError, "layout"),
    (lambda: data.show(np.zeros((4, 4))), ValueError, "x must"),
    (lambda: data.show([0.0, 0.0, 0.0]), TypeError, "x must"),
])
def test_layout_bad_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ---- the split of a trained model ---------------------------------------------------------------
def _old_notebook_split(model_path, num_images):
    """The code the analysis notebooks ran before trained_model_split (kept as the reference)."""
    import json

    import torch

    info = json.loads((model_path / "training_log.json").read_text())
    d = info["data"]
    r = d["r"]
    split = data.patch_split(r, d["num_train"], max(d["num_test"], num_images), crop=d["crop"],
                             seed=d["data_seed"], train_images=d["train_images"],
                             test_images=d["test_images"])

    def to_chw(flat):   # pfode.data order (r, r, 3) -> the model's (3, r, r), flattened
        return torch.tensor(flat.reshape(-1, r, r, 3).transpose(0, 3, 1, 2).reshape(len(flat), -1))

    return to_chw(split.train), to_chw(split.test), split, info


def _write_log(folder, **spec):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    log = dict(steps=7, loss_final_heldout=0.5, data=spec)
    (folder / data.TRAINING_LOG).write_text(json.dumps(log, indent=1))
    return log


SMALL = dict(r=4, crop=16, num_train=40, num_test=9, data_seed=3, train_images=["coffee", "rocket"],
             test_images=["flower"])


@pytest.mark.parametrize("num_images", [1, 9, 15])      # below, at and above the logged num_test
def test_split_reproduces_the_old_notebook_code(tmp_path, num_images):
    torch = pytest.importorskip("torch")
    log = _write_log(tmp_path / "model", **SMALL)
    train, test, old, info = _old_notebook_split(tmp_path / "model", num_images)
    for source in (tmp_path / "model", str(tmp_path / "model" / data.TRAINING_LOG)):
        new = data.trained_model_split(source, min_test=num_images)
        assert torch.equal(torch.tensor(data.to_chw(new.train)), train)
        assert torch.equal(torch.tensor(data.to_chw(new.test)), test)
        assert new.r == 4 and len(new.test) == max(9, num_images)
        assert new.train_images == old.train_images and new.test_images == old.test_images
        assert new.log == info == log and new.spec == SMALL


def test_split_of_the_committed_model_is_its_training_set():
    """The book's trained model: same arrays as the old notebook code, training set unchanged
    by the number of held-out patches drawn."""
    torch = pytest.importorskip("torch")
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "models" / "mmdit-patches"
    if not (folder / data.TRAINING_LOG).is_file():
        pytest.skip("no trained model in this checkout")
    train, test, _, info = _old_notebook_split(folder, 12)
    new = data.trained_model_split(folder, min_test=12)
    assert torch.equal(torch.tensor(data.to_chw(new.train)), train)
    assert torch.equal(torch.tensor(data.to_chw(new.test)), test)
    assert new.spec == info["data"]


def test_split_from_a_specification_is_what_the_training_run_records():
    """The training notebook's old code: patch_split of its parameters, and the log entry."""
    import json

    spec = dict(r=2, crop=8, num_train=30, num_test=6, data_seed=1)
    old = data.patch_split(2, 30, 6, crop=8, seed=1)
    old_entry = dict(spec, train_images=list(old.train_images), test_images=list(old.test_images))
    new = data.trained_model_split(spec)
    np.testing.assert_array_equal(new.train, old.train)
    np.testing.assert_array_equal(new.test, old.test)
    assert list(new.spec.items()) == list(old_entry.items()) and new.log == {}
    # what the run records reads back to the same split
    again = data.trained_model_split(json.loads(json.dumps(new.spec)))
    np.testing.assert_array_equal(again.train, new.train)
    np.testing.assert_array_equal(again.test, new.test)


@pytest.mark.parametrize("source, kwargs, err, match", [
    ("missing-folder", {}, FileNotFoundError, "source"),
    (3, {}, TypeError, "source must be"),
    ({k: v for k, v in SMALL.items() if k != "crop"}, {}, ValueError, r"lacks \['crop'\]"),
    (dict(SMALL, size=8), {}, ValueError, r"unknown entries \['size'\]"),
    (dict(SMALL, r="4"), {}, TypeError, r"source\['r'\]"),
    (dict(SMALL, num_train=0), {}, ValueError, r"source\['num_train'\]"),
    (dict(SMALL, r=3), {}, ValueError, "divide"),
    (dict(SMALL, test_images=["coffee"]), {}, ValueError, "disjoint"),
    (dict(SMALL, train_images=["nope"]), {}, ValueError, r"source\['train_images'\]"),
    (SMALL, dict(min_test=-1), ValueError, "min_test"),
    (SMALL, dict(min_test=2.0), TypeError, "min_test"),
])
def test_split_bad_arguments(tmp_path, source, kwargs, err, match):
    if source == "missing-folder":
        source = tmp_path / "nothing"
    with pytest.raises(err, match=match):
        data.trained_model_split(source, **kwargs)


def test_split_log_without_data_entry(tmp_path):
    (tmp_path / data.TRAINING_LOG).write_text('{"steps": 3}')
    with pytest.raises(ValueError, match="no \"data\" entry"):
        data.trained_model_split(tmp_path)


def test_digits_split_is_the_permuted_scaled_digits():
    from sklearn.datasets import load_digits
    raw = load_digits().data
    train, test = data.digits_split(100, 20, seed=3)
    perm = np.random.default_rng(3).permutation(len(raw))
    np.testing.assert_array_equal(train, raw[perm[:100]] / 8.0 - 1.0)
    np.testing.assert_array_equal(test, raw[perm[100:120]] / 8.0 - 1.0)
    assert train.min() >= -1 and train.max() <= 1 and train.shape == (100, 64)
    with pytest.raises(ValueError, match="num_train \\+ num_test"):
        data.digits_split(1700, 200)
    with pytest.raises(TypeError, match="num_train"):
        data.digits_split(1.5, 2)


def _restoration():
    from pfode import restoration
    return restoration


@pytest.mark.parametrize("module, call, extra", [
    ("skimage", lambda: _restoration().shepp_logan(32), "notebooks"),
    ("skimage", lambda: _restoration().psnr_ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)),
     "notebooks"),
    ("sklearn", lambda: data.digits_split(4, 2), "notebooks"),
    ("diffusers", lambda: _restoration().score_network(32), "diffusers"),
])
def test_a_missing_optional_dependency_names_its_extra(monkeypatch, module, call, extra):
    """After a plain ``pip install pfode`` (no extras) the functions that need scikit-image,
    scikit-learn or diffusers say which extra installs them, instead of 'No module named'."""
    import sys
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"pip install 'pfode\[{extra}\]'"):
        call()
