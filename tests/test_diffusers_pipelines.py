"""Pipeline folders as users have them: text encoders and no cached embeddings, a prompt and
classifier-free guidance, another dtype, dynamic shifting, diffusers' Heun scheduler. Each is
checked against diffusers' own pipeline or scheduler on tiny models built from configs."""
from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import pfode  # noqa: E402
from pfode import diffusers_field as dfl  # noqa: E402

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
import tiny_pipelines as tiny  # noqa: E402

# threshold: pfode's Euler steps (float64 state, float32 model) against the pipeline's
#   (float32 state): float32 round-off of each step, accumulated over a few steps, relative to
#   the size of the latents; a stated margin of about 100 float32 ulps
TOL = 2e-5


@pytest.fixture(scope="module")
def sd3_dir(tmp_path_factory):
    return tiny.sd3_folder(tmp_path_factory.mktemp("tiny-sd35") / "pipe")


def _pipeline(d):
    return diffusers.StableDiffusion3Pipeline.from_pretrained(str(d), local_files_only=True)


def test_null_prompt_from_the_text_encoders_and_cached(sd3_dir, tmp_path):
    d = tmp_path / "pipe"
    shutil.copytree(sd3_dir, d)
    assert not (d / dfl.NULL_CONDITIONING_FILE).exists()
    pf = dfl.load_pipeline(d, max_sequence_length=6)
    with torch.no_grad():
        e, _, pooled, _ = _pipeline(d).encode_prompt("", "", "", do_classifier_free_guidance=False,
                                                     max_sequence_length=6)
    assert torch.equal(pf.field.conditioning["encoder_hidden_states"], e)
    assert torch.equal(pf.field.conditioning["pooled_projections"], pooled)
    assert (d / dfl.NULL_CONDITIONING_FILE).exists()          # the next load needs no encoders
    again = dfl.load_pipeline(d)
    assert torch.equal(again.field.conditioning["encoder_hidden_states"], e)


@pytest.mark.parametrize("guidance_scale", [None, 2.5])
def test_prompt_and_guidance_equal_the_pipeline(sd3_dir, guidance_scale):
    """Euler generation with pfode from the same noise == StableDiffusion3Pipeline's latents,
    with a prompt, with and without classifier-free guidance against the empty prompt."""
    steps, prompt = 4, "a cat"
    pf = dfl.load_pipeline(sd3_dir, prompt=prompt, guidance_scale=guidance_scale, max_sequence_length=6)
    assert (pf.field.cfg_scale is None) == (guidance_scale is None)
    z = torch.randn(2, pf.field.n, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = pfode.generate(pf.field, z.double(), method="euler", ts=pf.ts(steps))
        ref = _pipeline(sd3_dir)(prompt=prompt, negative_prompt="", guidance_scale=guidance_scale or 1.0,
                                 num_inference_steps=steps, height=16, width=16, max_sequence_length=6, num_images_per_prompt=2,
                                 latents=z.reshape(2, *pf.latent_shape), output_type="latent").images
    ref = ref.reshape(2, -1).double()
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=TOL * float(ref.abs().max()), rtol=0)


def test_guided_field_is_the_combination(sd3_dir):
    """v = v_neg + w (v_cond - v_neg), checked against two unguided fields, and its JVP."""
    w = 3.0
    pf = dfl.load_pipeline(sd3_dir, prompt="a dog", guidance_scale=w, max_sequence_length=6)
    f = pf.field
    cond = dfl.DiffusersField(f.model, f.sample_shape, f.conditioning)
    neg = dfl.DiffusersField(f.model, f.sample_shape, f.negative_conditioning)
    g = torch.Generator().manual_seed(1)
    x, u = torch.randn(3, f.n, generator=g).double(), torch.randn(3, f.n, generator=g).double()
    want = neg(x, 0.4) + w * (cond(x, 0.4) - neg(x, 0.4))
    # threshold: the same float32 model calls batched differently: float32 round-off
    np.testing.assert_allclose(f(x, 0.4).numpy(), want.numpy(), atol=1e-5 * float(want.abs().max()))
    _, jw = f.velocity_jvp(x, 0.4, u)
    jn, jc = neg.velocity_jvp(x, 0.4, u)[1], cond.velocity_jvp(x, 0.4, u)[1]
    np.testing.assert_allclose(jw.numpy(), (jn + w * (jc - jn)).numpy(), atol=1e-5 * float(jw.abs().max()))


def test_dynamic_shifting_equals_the_pipeline(tmp_path):
    d = tiny.sd3_folder(tmp_path / "pipe", dynamic_shifting=True)
    pf = dfl.load_pipeline(d, max_sequence_length=6)
    assert pf.image_seq_len == 16
    steps = 5
    z = torch.randn(1, pf.field.n, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = pfode.generate(pf.field, z.double(), method="euler", ts=pf.ts(steps))
        ref = _pipeline(d)(prompt="", num_inference_steps=steps, height=16, width=16, guidance_scale=1.0,
                           max_sequence_length=6, latents=z.reshape(1, *pf.latent_shape),
                           output_type="latent").images.reshape(1, -1).double()
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=TOL * float(ref.abs().max()), rtol=0)


def test_dtype_is_honoured(sd3_dir):
    pf = dfl.load_pipeline(sd3_dir, dtype=torch.bfloat16, max_sequence_length=6)
    for m in (pf.field.model, pf.vae):
        assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    assert pf.field.conditioning["encoder_hidden_states"].dtype == torch.bfloat16
    x = torch.randn(2, pf.field.n, dtype=torch.float64)
    v = pf.field(x, 0.5)
    assert v.dtype == torch.float64 and torch.isfinite(v).all()
    assert torch.isfinite(pf.decode(x)).all()


def test_chunks_change_nothing(sd3_dir):
    whole = dfl.load_pipeline(sd3_dir, max_sequence_length=6)
    parts = dfl.load_pipeline(sd3_dir, max_sequence_length=6, chunk=2)
    g = torch.Generator().manual_seed(4)
    imgs = torch.rand(5, 3, 16, 16, generator=g) * 2 - 1
    lat = whole.encode(imgs)
    # threshold: one batch against batches of two of the same float32 convolutions: round-off
    np.testing.assert_allclose(parts.encode(imgs).numpy(), lat.numpy(), atol=1e-5)
    np.testing.assert_allclose(parts.decode(lat).numpy(), whole.decode(lat).numpy(), atol=1e-5)
    x = lat.double()
    np.testing.assert_allclose(parts.field(x, 0.3).numpy(), whole.field(x, 0.3).numpy(), atol=1e-5)


def test_what_is_missing_is_said_before_loading(sd3_dir, tmp_path, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the check")

    bare = tiny.sd3_folder(tmp_path / "bare", encoders=False)
    monkeypatch.setattr(dfl, "_load_parts", no_loading)
    with pytest.raises(FileNotFoundError, match="lists none"):
        dfl.load_pipeline(bare)
    dfl.save_null_conditioning(bare, torch.zeros(1, 4, 32), torch.zeros(1, 16))
    with pytest.raises(FileNotFoundError, match="the prompt 'a cat' needs the pipeline's text encoders"):
        dfl.load_pipeline(bare, prompt="a cat")
    d = tmp_path / "no-t5"
    shutil.copytree(sd3_dir, d)
    (d / dfl.NULL_CONDITIONING_FILE).unlink(missing_ok=True)
    shutil.rmtree(d / "text_encoder_3")
    with pytest.raises(FileNotFoundError, match="text_encoder_3"):
        dfl.load_pipeline(d)
    monkeypatch.setitem(sys.modules, "transformers", None)          # import transformers -> ImportError
    with pytest.raises(ImportError, match=r"needs transformers.*pip install 'pfode\[diffusers\]'"):
        dfl.load_pipeline(sd3_dir, prompt="a cat")
    with pytest.raises(TypeError, match="prompt must be a str"):
        dfl.load_pipeline(sd3_dir, prompt=None)
    with pytest.raises(TypeError, match="dtype"):
        dfl.load_pipeline(sd3_dir, dtype="bfloat16")


def test_guidance_errors(sd3_dir):
    pf = dfl.load_pipeline(sd3_dir, max_sequence_length=6)
    f = pf.field
    with pytest.raises(ValueError, match="negative_conditioning"):
        dfl.DiffusersField(f.model, f.sample_shape, f.conditioning, guidance_scale=2.0)
    with pytest.raises(ValueError, match="finite"):
        dfl.DiffusersField(f.model, f.sample_shape, f.conditioning, guidance_scale=float("nan"),
                           negative_conditioning=f.conditioning)
    with pytest.raises(ValueError, match="shapes"):
        dfl.DiffusersField(f.model, f.sample_shape, f.conditioning, guidance_scale=2.0,
                           negative_conditioning={k: v[:, :1] for k, v in f.conditioning.items()})
    with pytest.raises(ValueError, match="needs a guidance_scale"):
        dfl.DiffusersField(f.model, f.sample_shape, f.conditioning, negative_conditioning=f.conditioning)
    one = dfl.DiffusersField(f.model, f.sample_shape, f.conditioning, guidance_scale=1.0,
                             negative_conditioning=f.conditioning)
    assert one.cfg_scale is None                                    # w = 1 is the conditional field


def test_heun_last_step_euler_is_the_diffusers_heun_scheduler(sd3_dir):
    pf = dfl.load_pipeline(sd3_dir, max_sequence_length=6)
    sch = diffusers.FlowMatchHeunDiscreteScheduler.from_config(pf.scheduler.config)
    steps = 6
    sch.set_timesteps(steps)
    ts = torch.unique_consecutive(sch.sigmas.double())
    assert len(ts) == steps + 1 and float(ts[-1]) == 0.0
    z = torch.randn(2, pf.field.n, generator=torch.Generator().manual_seed(5))
    c = pf.field.conditioning
    lat = z.reshape(2, *pf.latent_shape).clone()
    with torch.no_grad():
        for t in sch.timesteps:
            out = pf.field.model(hidden_states=lat, timestep=t.expand(2), return_dict=False,
                                 encoder_hidden_states=c["encoder_hidden_states"].expand(2, -1, -1),
                                 pooled_projections=c["pooled_projections"].expand(2, -1))[0]
            lat = sch.step(out, t, lat, return_dict=False)[0]
        ours = pfode.generate(pf.field, z.double(), method="heun", last_step="euler", ts=ts)
        trapezoid = pfode.generate(pf.field, z.double(), method="heun", ts=ts)
    ref = lat.reshape(2, -1).double()
    scale = float(ref.abs().max())
    # threshold: the scheduler's 11 float32 evaluations and updates against ours: about 40
    #   float32 ulps (1.2e-7 each) relative to the latents' size. The trapezoid on the last
    #   interval differs by O(h^2) there, far more (5e-5 relative on this model), so the
    #   comparison tells the two apart
    tol = 5e-6 * scale
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=tol, rtol=0)
    assert float((trapezoid - ref).abs().max()) > 5 * tol


def test_efficient_attention_outside_forward_mode(sd3_dir):
    pf = dfl.load_pipeline(sd3_dir, max_sequence_length=6)
    x = torch.randn(2, pf.field.n, dtype=torch.float64)
    assert not dfl.carries_tangent(x)
    seen = []
    torch.func.jvp(lambda y: seen.append(dfl.carries_tangent(y)) or y, (x,), (x,))
    with torch.autograd.forward_ad.dual_level():
        seen.append(dfl.carries_tangent(torch.autograd.forward_ad.make_dual(x, x)))
    assert seen == [True, True]
    with dfl.math_attention():
        ref = pf.field(x, 0.7)
    # threshold: two attention kernels on the same float32 inputs: float32 round-off
    np.testing.assert_allclose(pf.field(x, 0.7).numpy(), ref.numpy(), atol=1e-5 * float(ref.abs().max()))
    v, jw = pf.field.velocity_jvp(x, 0.7, x)                         # forward mode still works
    assert torch.isfinite(jw).all()


@pytest.mark.parametrize("guidance", [False, True])
def test_flux_prompt_equals_the_pipeline(tmp_path, guidance):
    d = tiny.flux_folder(tmp_path / "flux", guidance=guidance)
    steps, prompt = 4, "a cat"
    pf = dfl.load_pipeline(d, prompt=prompt, image_size=16, max_sequence_length=6)
    assert pf.field.guidance_scale == (3.5 if guidance else None)
    assert (d / dfl.NULL_CONDITIONING_FILE).exists() is False      # only the empty prompt is cached
    z = torch.randn(1, pf.field.n, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ours = pfode.generate(pf.field, z.double(), method="euler", ts=pf.ts(steps))
        pipe = diffusers.FluxPipeline.from_pretrained(str(d), local_files_only=True)
        ref = pipe(prompt=prompt, num_inference_steps=steps, height=16, width=16, max_sequence_length=6,
                   guidance_scale=3.5, latents=dfl.pack_latents(z.reshape(1, *pf.latent_shape)),
                   output_type="latent").images
    ref = ref.double()
    np.testing.assert_allclose(dfl.pack_latents(ours.reshape(1, *pf.latent_shape)).numpy(), ref.numpy(),
                               atol=TOL * float(ref.abs().max()), rtol=0)
    with pytest.raises(ValueError, match="negative_prompt"):
        dfl.load_pipeline(d, negative_prompt="blurry")
