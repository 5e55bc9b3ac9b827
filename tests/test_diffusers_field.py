"""pfode.diffusers_field on tiny models built from configs (offline, CPU, a few seconds)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

import pfode  # noqa: E402
from pfode import diffusers_field as dfl  # noqa: E402

sys.path.insert(0, str(os.path.dirname(__file__)))
import tiny_pipelines as tiny  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"


def tiny_transformer(sample_size=8, in_channels=4, seed=0):
    torch.manual_seed(seed)
    return diffusers.SD3Transformer2DModel(
        sample_size=sample_size, patch_size=2, in_channels=in_channels, out_channels=in_channels,
        num_layers=2, attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
        caption_projection_dim=16, pooled_projection_dim=12, pos_embed_max_size=sample_size).eval()


def tiny_vae(seed=0):
    return tiny.vae(seed)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A tiny SD3-layout pipeline folder (transformer, VAE, scheduler, null embeddings)."""
    d = tmp_path_factory.mktemp("tiny-sd3")
    tr, vae = tiny_transformer(), tiny_vae()
    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
    tr.save_pretrained(d / "transformer")
    vae.save_pretrained(d / "vae")
    sch.save_pretrained(d / "scheduler")
    (d / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusion3Pipeline", "_diffusers_version": diffusers.__version__,
        "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]}))
    g = torch.Generator().manual_seed(1)
    dfl.save_null_conditioning(d, torch.randn(1, 5, 16, generator=g), torch.randn(1, 12, generator=g))
    return d


def test_import_pfode_does_not_import_diffusers():
    code = "import sys, pfode, pfode.diffusers_field; print('diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_field_equals_direct_transformer_call():
    tr = tiny_transformer()
    g = torch.Generator().manual_seed(0)
    cond = {"encoder_hidden_states": torch.randn(1, 3, 16, generator=g),
            "pooled_projections": torch.randn(1, 12, generator=g)}
    field = dfl.DiffusersField(tr, conditioning=cond)
    assert field.sample_shape == (4, 8, 8) and field.n == 256
    x = torch.randn(3, 256, generator=g, dtype=torch.float64)
    with torch.no_grad():
        direct = tr(hidden_states=x.float().reshape(3, 4, 8, 8), timestep=torch.full((3,), 370.0),
                    encoder_hidden_states=cond["encoder_hidden_states"].expand(3, 3, 16),
                    pooled_projections=cond["pooled_projections"].expand(3, 12),
                    return_dict=False)[0]
        v = field(x, 0.37)
    assert v.dtype == torch.float64 and v.shape == (3, 256)
    # threshold: the same float32 model evaluated through two call paths (chunking, casts): float32
    #   round-off of O(1) outputs through a few layers, a stated 1e-6
    np.testing.assert_allclose(v.numpy(), direct.reshape(3, -1).double().numpy(), atol=1e-6)
    # chunked evaluation gives the same numbers; a per-sample time works too
    # threshold: chunked and unchunked calls of the same float32 model: float32 round-off, a
    #   stated 1e-6
    with torch.no_grad():
        np.testing.assert_allclose(dfl.DiffusersField(tr, conditioning=cond, chunk=2)(x, 0.37).numpy(),
                                   v.numpy(), atol=1e-6)
        np.testing.assert_allclose(field(x, torch.full((3,), 0.37)).numpy(), v.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        field(torch.zeros(2, 5), 0.5)


def test_unet_field():
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval()
    field = dfl.DiffusersField(unet)
    x = torch.randn(2, 192, dtype=torch.float64)
    with torch.no_grad():
        direct = unet(x.float().reshape(2, 3, 8, 8), torch.full((2,), 250.0)).sample
        # threshold: the same float32 model through two call paths: float32 round-off, a stated
        #   1e-6
        np.testing.assert_allclose(field(x, 0.25).numpy(), direct.reshape(2, -1).numpy(), atol=1e-6)


def test_shift_and_schedule_ts():
    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
    ts = dfl.schedule_ts(sch, 20)
    assert ts.dtype == torch.float64 and ts.shape == (21,)
    assert float(ts[0]) == 1.0 and float(ts[-1]) == 0.0 and bool((ts.diff() < 0).all())
    # diffusers: the shift applied to a uniform grid from 1 to the training sigma_min, which is
    # itself the shifted 1/1000
    u = torch.linspace(1.0, float(dfl.shift_sigma(torch.tensor(1e-3, dtype=torch.float64), 3.0)), 20,
                       dtype=torch.float64)
    np.testing.assert_allclose(ts[:-1].numpy(), dfl.shift_sigma(u, 3.0).numpy(), atol=1e-6)
    assert dfl.shift_sigma(0.5, 1.0) == 0.5 and dfl.shift_sigma(1.0, 3.0) == 1.0


def test_pipeline_round_trip_and_euler_equals_scheduler(pipeline_dir):
    pf = dfl.load_pipeline(pipeline_dir)
    assert pf.latent_shape == (4, 8, 8) and pf.image_size == 16
    assert pf.field.conditioning["encoder_hidden_states"].shape == (1, 5, 16)
    # weights survive save_pretrained / from_pretrained
    fresh = tiny_transformer()
    for (k, a), b in zip(fresh.state_dict().items(), pf.field.model.state_dict().values()):
        assert torch.equal(a, b), k
    # Euler generation with pfode on the scheduler grid == the diffusers scheduler loop
    steps = 12
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, pf.field.n, generator=g)
    ts = pf.ts(steps)
    with torch.no_grad():
        ours = pfode.generate(pf.field, z.double(), method="euler", ts=ts)
        sch = pf.scheduler
        sch.set_timesteps(steps)
        lat = z.reshape(2, *pf.latent_shape).clone()
        c = pf.field.conditioning
        for t in sch.timesteps:
            out = pf.field.model(hidden_states=lat, timestep=t.expand(2),
                                 encoder_hidden_states=c["encoder_hidden_states"].expand(2, -1, -1),
                                 pooled_projections=c["pooled_projections"].expand(2, -1),
                                 return_dict=False)[0]
            lat = sch.step(out, t, lat, return_dict=False)[0]
    ref = lat.reshape(2, -1).double()
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=2e-5 * float(ref.abs().max()), rtol=0)
    # VAE helpers: encode/decode shapes, and the scaling is undone exactly
    imgs = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    lat = pf.encode(imgs)
    assert lat.shape == (2, pf.field.n)
    raw = pf.vae.encode(imgs).latent_dist.mean.reshape(2, -1)
    np.testing.assert_allclose(lat.numpy(), ((raw - 0.1) * 1.5).detach().numpy(), atol=1e-6)
    assert pf.decode(lat).shape == (2, 3, 16, 16)
    # inversion on the reversed grid, then generation: a full latent-space reconstruction
    with torch.no_grad():
        zhat = pfode.invert(pf.field, lat.double(), method="euler", ts=ts.flip(0))
        rec = pf.decode(pfode.generate(pf.field, zhat, method="euler", ts=ts).float())
    assert torch.isfinite(rec).all()


def test_jvp_matches_finite_differences():
    tr = tiny_transformer(sample_size=4, in_channels=3)
    field = dfl.DiffusersField(tr)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, field.n, generator=g, dtype=torch.float64)
    u = torch.randn(2, field.n, generator=g, dtype=torch.float64)
    v, jv = field.velocity_jvp(x, 0.6, u)
    h = 1e-2
    with torch.no_grad():
        fd = (field(x + h * u, 0.6) - field(x - h * u, 0.6)) / (2 * h)
    np.testing.assert_allclose(jv.numpy(), fd.numpy(), rtol=0, atol=2e-3 * float(fd.abs().max()))
    # the flow map's tangent (exact derivative of the discrete Euler map) vs finite differences
    G = pfode.generation_map(field, method="euler", steps=5)
    _, Ju = G.jvp(x, u)
    with torch.no_grad():
        fd = (G(x + h * u) - G(x - h * u)) / (2 * h)
    np.testing.assert_allclose(Ju.numpy(), fd.numpy(), rtol=0, atol=5e-3 * float(fd.abs().max()))
    lam = pfode.directional_instability(G, x, u)
    assert lam.shape == (2,) and bool(torch.isfinite(lam).all())


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="hub id"):
        dfl.load_pipeline("stabilityai/stable-diffusion-3.5-large")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dfl.load_pipeline(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        dfl.load_pipeline(tmp_path)
    with pytest.raises(FileNotFoundError):
        dfl.load_transformer(tmp_path / "missing")
    with pytest.raises(ValueError):
        dfl.schedule_ts(diffusers.FlowMatchEulerDiscreteScheduler(), 0)


def test_loading_leaves_the_environment_alone(pipeline_dir, monkeypatch):
    """Nothing is downloaded (local_files_only), and the process's HF_HUB_OFFLINE is not set as
    a side effect of loading."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    dfl.load_pipeline(pipeline_dir)
    with pytest.raises(FileNotFoundError):
        dfl.load_pipeline("stabilityai/stable-diffusion-3.5-large")
    assert "HF_HUB_OFFLINE" not in os.environ


def test_damaged_folders_are_named(pipeline_dir, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(pipeline_dir, broken)
    (broken / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model_index.json is not valid JSON"):
        dfl.load_pipeline(broken)
    for part in ("transformer", "vae", "scheduler"):
        d = tmp_path / f"no-{part}"
        shutil.copytree(pipeline_dir, d)
        shutil.rmtree(d / part)
        with pytest.raises(FileNotFoundError, match=f"has no {part}/ subfolder"):
            dfl.load_pipeline(d)
    d = tmp_path / "no-weights"
    shutil.copytree(pipeline_dir, d)
    for f in (d / "transformer").glob("*.safetensors"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"transformer has a config.json but no weights"):
        dfl.load_pipeline(d)
    with pytest.raises(FileNotFoundError, match="no weights"):
        dfl.load_transformer(d / "transformer")
    (d / "transformer" / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        dfl.load_transformer(d / "transformer")


def test_committed_model_loads():
    path = os.path.join(os.path.dirname(__file__), "..", "models", "mmdit-patches")
    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "config.json")):
        pytest.skip("no committed model")
    field = dfl.DiffusersField(dfl.load_transformer(path))
    assert field.sample_shape == (3, 8, 8)
    with torch.no_grad():
        v = field(torch.zeros(1, field.n, dtype=torch.float64), 1.0)
    assert torch.isfinite(v).all()


def test_schedule_map_matches_generate_and_jvp():
    tr = tiny_transformer(sample_size=4, in_channels=3)
    field = dfl.DiffusersField(tr)
    ts = dfl.schedule_ts(diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0), 6)
    G = dfl.schedule_map(field, ts, "heun")
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, field.n, generator=g, dtype=torch.float64)
    u = torch.randn(2, field.n, generator=g, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(G(z).numpy(), pfode.generate(field, z, method="heun", ts=ts).numpy(),
                                   atol=1e-12)
        h = 1e-2
        fd = (G(z + h * u) - G(z - h * u)) / (2 * h)
    np.testing.assert_allclose(G.jvp(z, u)[1].numpy(), fd.numpy(), atol=5e-3 * float(fd.abs().max()))


# ---------------------------------------------------------------------------------------------
# FLUX: packed 2x2 latents, position ids, guidance embedding, timestep = sigma


def tiny_flux(guidance=False, latent_channels=4, seed=0):
    torch.manual_seed(seed)
    return diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=4 * latent_channels, num_layers=1, num_single_layers=1,
        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
        pooled_projection_dim=8, guidance_embeds=guidance, axes_dims_rope=(2, 2, 4)).eval()


def flux_cond(seed=0, tokens=3):
    g = torch.Generator().manual_seed(seed)
    return {"encoder_hidden_states": torch.randn(1, tokens, 16, generator=g),
            "pooled_projections": torch.randn(1, 8, generator=g)}


def pack_by_index(lat):
    """FluxPipeline._pack_latents written entry by entry: token (i, j), feature (c, di, dj)."""
    B, C, H, W = lat.shape
    out = torch.empty(B, (H // 2) * (W // 2), 4 * C, dtype=lat.dtype)
    for i in range(H // 2):
        for j in range(W // 2):
            for c in range(C):
                for di in range(2):
                    for dj in range(2):
                        out[:, i * (W // 2) + j, 4 * c + 2 * di + dj] = lat[:, c, 2 * i + di, 2 * j + dj]
    return out


def flux_ids(h, w, tokens):
    img = torch.tensor([[0.0, i, j] for i in range(h) for j in range(w)])
    return img, torch.zeros(tokens, 3)


def test_flux_packing_and_ids():
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(2, 3, 4, 6, generator=g)
    packed = dfl.pack_latents(lat)
    assert torch.equal(packed, pack_by_index(lat))
    assert torch.equal(dfl.unpack_latents(packed, 3, 4, 6), lat)
    assert torch.equal(dfl.latent_image_ids(2, 3), flux_ids(2, 3, 1)[0])


@pytest.mark.parametrize("guidance", [None, 4.0])
def test_flux_field_equals_direct_transformer_call(guidance):
    tr = tiny_flux(guidance is not None)
    cond = flux_cond()
    field = dfl.FluxField(tr, (4, 6, 4), cond, guidance_scale=guidance)
    assert field.n == 96 and field.seq_len == 6
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 96, generator=g, dtype=torch.float64)
    img_ids, txt_ids = flux_ids(3, 2, 3)
    with torch.no_grad():
        # the FluxPipeline call: timestep = (1000 sigma) / 1000, guidance = the scale
        out = tr(hidden_states=pack_by_index(x.float().reshape(3, 4, 6, 4)),
                 timestep=torch.full((3,), 370.0) / 1000,
                 guidance=None if guidance is None else torch.full((3,), guidance),
                 pooled_projections=cond["pooled_projections"].expand(3, -1),
                 encoder_hidden_states=cond["encoder_hidden_states"].expand(3, -1, -1),
                 txt_ids=txt_ids, img_ids=img_ids, return_dict=False)[0]
        v = field(x, 0.37)
    assert v.dtype == torch.float64 and v.shape == (3, 96)
    # packed output -> unpacked layout, entry by entry
    np.testing.assert_allclose(pack_by_index(v.reshape(3, 4, 6, 4)).numpy(), out.double().numpy(),
                               atol=1e-6)
    with torch.no_grad():
        # threshold: chunked and unchunked calls of the same float32 model: float32 round-off, a
        #   stated 1e-6
        np.testing.assert_allclose(dfl.FluxField(tr, (4, 6, 4), cond, guidance_scale=guidance, chunk=2)(x, 0.37).numpy(),
                                   v.numpy(), atol=1e-6)
        np.testing.assert_allclose(field(x, torch.full((3,), 0.37)).numpy(), v.numpy(), atol=1e-6)
        # the time (and the guidance) actually enter
        assert float((field(x, 0.8) - v).abs().max()) > 1e-4
        if guidance is not None:
            other = dfl.FluxField(tr, (4, 6, 4), cond, guidance_scale=1.0)(x, 0.37)
            assert float((other - v).abs().max()) > 1e-4


def test_flux_jvp_matches_finite_differences():
    field = dfl.FluxField(tiny_flux(True), (4, 4, 4), flux_cond(), guidance_scale=3.5)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, field.n, generator=g, dtype=torch.float64)
    u = torch.randn(2, field.n, generator=g, dtype=torch.float64)
    _, jv = field.velocity_jvp(x, 0.6, u)
    h = 1e-2
    with torch.no_grad():
        fd = (field(x + h * u, 0.6) - field(x - h * u, 0.6)) / (2 * h)
    np.testing.assert_allclose(jv.numpy(), fd.numpy(), rtol=0, atol=2e-3 * float(fd.abs().max()))
    G = pfode.generation_map(field, method="euler", steps=4)
    _, Ju = G.jvp(x, u)
    with torch.no_grad():
        fd = (G(x + h * u) - G(x - h * u)) / (2 * h)
    np.testing.assert_allclose(Ju.numpy(), fd.numpy(), rtol=0, atol=5e-3 * float(fd.abs().max()))


@pytest.fixture(scope="module", params=[False, True], ids=["schnell-like", "dev-like"])
def flux_dir(request, tmp_path_factory):
    """A tiny FLUX-layout pipeline folder (transformer, VAE, dynamic-shift scheduler, null embeddings)."""
    d = tmp_path_factory.mktemp("tiny-flux")
    tr, vae = tiny_flux(request.param), tiny_vae()
    sch = diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True,
                                                    base_image_seq_len=4, max_image_seq_len=64,
                                                    base_shift=0.5, max_shift=1.15)
    tr.save_pretrained(d / "transformer")
    vae.save_pretrained(d / "vae")
    sch.save_pretrained(d / "scheduler")
    (d / "model_index.json").write_text(json.dumps({
        "_class_name": "FluxPipeline", "_diffusers_version": diffusers.__version__,
        "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]}))
    g = torch.Generator().manual_seed(1)
    dfl.save_null_conditioning(d, torch.randn(1, 5, 16, generator=g), torch.randn(1, 8, generator=g))
    return d, request.param


def test_flux_pipeline_round_trip_and_euler_equals_scheduler(flux_dir):
    d, guided = flux_dir
    pf = dfl.load_pipeline(d, image_size=16)
    assert isinstance(pf.field, dfl.FluxField) and pf.latent_shape == (4, 8, 8)
    assert pf.field.guidance_scale == (3.5 if guided else None)
    assert pf.field.conditioning["encoder_hidden_states"].shape == (1, 5, 16)
    fresh = tiny_flux(guided)
    for (k, a), b in zip(fresh.state_dict().items(), pf.field.model.state_dict().values()):
        assert torch.equal(a, b), k
    # the grid: FluxPipeline's linspace(1, 1/N, N), shifted with mu linear in the sequence length
    steps = 6
    ts = pf.ts(steps)
    mu = 0.5 + (1.15 - 0.5) * (16 - 4) / (64 - 4)
    s = torch.linspace(1.0, 1.0 / steps, steps, dtype=torch.float64)
    shifted = np.exp(mu) / (np.exp(mu) + (1 / s - 1))
    np.testing.assert_allclose(ts[:-1].numpy(), shifted.numpy(), atol=1e-6)
    assert float(ts[-1]) == 0.0
    # pfode Euler on that grid == the FluxPipeline denoising loop with scheduler.step
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, pf.field.n, generator=g)
    c = pf.field.conditioning
    img_ids, txt_ids = flux_ids(4, 4, 5)
    with torch.no_grad():
        ours = pfode.generate(pf.field, z.double(), method="euler", ts=ts)
        sch = pf.scheduler
        sch.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
        lat = pack_by_index(z.reshape(2, 4, 8, 8))
        guidance = torch.full((2,), 3.5) if guided else None
        for t in sch.timesteps:
            out = pf.field.model(hidden_states=lat, timestep=t.expand(2) / 1000, guidance=guidance,
                                 pooled_projections=c["pooled_projections"].expand(2, -1),
                                 encoder_hidden_states=c["encoder_hidden_states"].expand(2, -1, -1),
                                 txt_ids=txt_ids, img_ids=img_ids, return_dict=False)[0]
            lat = sch.step(out, t, lat, return_dict=False)[0]
    ref = lat.double()
    # threshold: our Euler steps against the scheduler's on the same float32 model: float32
    #   round-off accumulated over the steps, a stated tolerance
    np.testing.assert_allclose(pack_by_index(ours.reshape(2, 4, 8, 8)).numpy(), ref.numpy(),
                               atol=1e-6 * max(1.0, float(ref.abs().max())), rtol=0)
    # VAE: latents = (mode - shift) * scale, decoded back through the inverse map
    imgs = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    lat = pf.encode(imgs)
    raw = pf.vae.encode(imgs).latent_dist.mode().reshape(2, -1)
    np.testing.assert_allclose(lat.numpy(), ((raw - 0.1) * 1.5).detach().numpy(), atol=1e-6)
    with torch.no_grad():
        direct = pf.vae.decode(lat.reshape(2, 4, 8, 8) / 1.5 + 0.1).sample
    np.testing.assert_allclose(pf.decode(lat).numpy(), direct.numpy(), atol=1e-6)
    with torch.no_grad():
        zhat = pfode.invert(pf.field, lat.double(), method="euler", ts=ts.flip(0))
        rec = pf.decode(pfode.generate(pf.field, zhat, method="euler", ts=ts).float())
    assert torch.isfinite(rec).all()


def test_flux_clear_errors(flux_dir, tmp_path):
    d, guided = flux_dir
    with pytest.raises(ValueError, match="multiple of 2 x VAE factor"):
        dfl.load_pipeline(d, image_size=10)
    tr = tiny_flux(guidance=True)
    with pytest.raises(ValueError, match="guidance_scale"):
        dfl.FluxField(tr, (4, 4, 4), flux_cond())
    with pytest.raises(ValueError, match="guidance_scale must be None"):
        dfl.FluxField(tiny_flux(guidance=False), (4, 4, 4), flux_cond(), guidance_scale=3.5)
    with pytest.raises(ValueError, match="in_channels"):
        dfl.FluxField(tr, (3, 4, 4), flux_cond(), guidance_scale=3.5)
    with pytest.raises(ValueError, match="even"):
        dfl.FluxField(tr, (4, 5, 4), flux_cond(), guidance_scale=3.5)
    with pytest.raises(TypeError, match="FluxTransformer2DModel"):
        dfl.FluxField(tiny_transformer(), (4, 8, 8), guidance_scale=None)
    with pytest.raises(ValueError, match="txt_ids"):
        dfl.FluxField(tr, (4, 4, 4), {**flux_cond(), "txt_ids": torch.zeros(2, 3)}, guidance_scale=3.5)
    other = tmp_path / "fill"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "FluxFillPipeline"}))
    with pytest.raises(NotImplementedError, match="FluxPipeline"):
        dfl.load_pipeline(other)


def test_missing_diffusers_names_the_extra(monkeypatch):
    """diffusers is optional: without it the module still imports, and a loader says how to
    install it instead of failing deep inside."""
    import sys
    from pfode import diffusers_field as dfl
    monkeypatch.setitem(sys.modules, "diffusers", None)          # import diffusers -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'pfode\[diffusers\]'"):
        dfl.require_diffusers()
