"""Tiny pipeline folders laid out like the real SD3.5 and FLUX.1 ones, built from configs
(offline, random weights, seconds): the transformer, the VAE, the scheduler and, for SD3, the
two CLIP text encoders and the T5 encoder with tokenizers made from a character vocabulary."""
from __future__ import annotations

import string
from pathlib import Path

import torch

CHARS = string.ascii_lowercase + string.digits


def clip_tokenizer(max_length: int = 8):
    """A CLIP tokenizer whose vocabulary is the characters (and their end-of-word forms)."""
    from transformers import CLIPTokenizer
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def t5_tokenizer(max_length: int = 6):
    """A T5 (unigram) tokenizer over the characters."""
    from transformers import T5TokenizerFast
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -1.0) for c in CHARS] + [("▁", -1.0)]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


def clip_encoder(vocab_size: int, seed: int, hidden: int = 16, projection: int = 8, positions: int = 8):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    torch.manual_seed(seed)
    return CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=positions, projection_dim=projection,
        bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()


def t5_encoder(vocab_size: int, seed: int, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=24,
                                   num_layers=2, num_heads=2, decoder_start_token_id=0)).eval()


def vae(seed: int = 0):
    import diffusers
    torch.manual_seed(seed)
    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=4, norm_num_groups=4, sample_size=16, scaling_factor=1.5,
        shift_factor=0.1).eval()


def sd3_folder(d: Path, *, encoders: bool = True, dynamic_shifting: bool = False, seed: int = 0) -> Path:
    """A StableDiffusion3Pipeline folder (16-pixel images, 8x8x4 latents) saved with
    ``save_pretrained``: text encoders and tokenizers included when ``encoders``; no
    ``null_conditioning.pt``. The T5 prompt length is 6 tokens."""
    import diffusers
    torch.manual_seed(seed)
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=2,
        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
        caption_projection_dim=16, pooled_projection_dim=16, pos_embed_max_size=8).eval()
    kw = dict(use_dynamic_shifting=True, base_image_seq_len=4, max_image_seq_len=64,
              base_shift=0.5, max_shift=1.15) if dynamic_shifting else dict(shift=3.0)
    parts = dict(transformer=transformer, vae=vae(seed), scheduler=diffusers.FlowMatchEulerDiscreteScheduler(**kw))
    if encoders:
        tok, t5 = clip_tokenizer(), t5_tokenizer()
        parts.update(text_encoder=clip_encoder(tok.vocab_size, seed + 1), tokenizer=tok,
                     text_encoder_2=clip_encoder(tok.vocab_size, seed + 2), tokenizer_2=tok,
                     text_encoder_3=t5_encoder(t5.vocab_size, seed + 3), tokenizer_3=t5)
    else:
        parts.update(text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
                     text_encoder_3=None, tokenizer_3=None)
    diffusers.StableDiffusion3Pipeline(**parts).save_pretrained(d)
    return d


def images(d: Path, count: int = 3, size: int = 20, seed: int = 0) -> Path:
    """``count`` random RGB PNGs of ``size`` pixels in the folder ``d``."""
    import numpy as np
    from PIL import Image
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    return d


def flux_folder(d: Path, *, guidance: bool = False, seed: int = 0) -> Path:
    """A FluxPipeline folder (16-pixel images, 8x8x4 latents packed to 16 tokens) with its CLIP
    and T5 text encoders and tokenizers, a dynamic-shift scheduler and no cached embeddings."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel
    tok, t5 = clip_tokenizer(), t5_tokenizer()
    torch.manual_seed(seed + 1)
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=tok.vocab_size, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=8, bos_token_id=0, eos_token_id=1,
        pad_token_id=1)).eval()
    torch.manual_seed(seed)
    transformer = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=8,
        guidance_embeds=guidance, axes_dims_rope=(2, 2, 4)).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True, base_image_seq_len=4, max_image_seq_len=64, base_shift=0.5,
        max_shift=1.15)
    diffusers.FluxPipeline(transformer=transformer, vae=vae(seed), scheduler=scheduler,
                           text_encoder=clip, tokenizer=tok,
                           text_encoder_2=t5_encoder(t5.vocab_size, seed + 2), tokenizer_2=t5
                           ).save_pretrained(d)
    return d
