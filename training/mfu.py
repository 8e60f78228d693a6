"""Model FLOPs utilization: achieved model FLOPs / the device's peak.

Model FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B): ``6 N`` for the matmul
parameters (forward + backward; the LM head counts, the embedding lookup does not) plus
``12 L H Q T`` for attention scores and values. Activation recomputation is not counted
(that would be *hardware* FLOPs).
"""

from __future__ import annotations

import os

import torch

from training.model import ModelConfig

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s. fp32 training on these uses TF32 (half).
_PEAK_BF16 = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A10G", 70e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("RTX 4090", 165e12),
    ("V100", 125e12),
)


def flops_per_token(cfg: ModelConfig, seq_len: int, training: bool = True) -> float:
    matmul_params = cfg.num_params(embeddings=False) + cfg.vocab_size * cfg.hidden_size
    attn = 12 * cfg.num_layers * cfg.num_heads * cfg.dim_per_head * seq_len
    f = 6 * matmul_params + attn
    return f if training else f / 3


def peak_flops(device: torch.device | str, dtype: torch.dtype = torch.bfloat16) -> float | None:
    """Peak FLOP/s of ``device`` for ``dtype``; ``CODECORPUS_PEAK_FLOPS`` overrides, None if unknown (CPU)."""
    env = os.environ.get("CODECORPUS_PEAK_FLOPS")
    if env:
        return float(env)
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in _PEAK_BF16:
        if key in name:
            return peak if dtype in (torch.bfloat16, torch.float16) else peak / 2
    return None


def mfu(tokens_per_second: float, cfg: ModelConfig, seq_len: int, device: torch.device | str,
        dtype: torch.dtype = torch.bfloat16) -> float | None:
    peak = peak_flops(device, dtype)
    if not peak:
        return None
    return tokens_per_second * flops_per_token(cfg, seq_len) / peak
