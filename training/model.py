"""A Qwen2 decoder in plain torch, readable top to bottom.

Architecture (Qwen2 / Qwen2.5-Coder): token embedding -> N x [RMSNorm -> grouped-query
attention (bias on Q/K/V, RoPE) -> residual -> RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm ->
LM head (tied to the embedding for the small presets). Attention goes through
``scaled_dot_product_attention`` so flash / memory-efficient kernels are used on GPU; packed
sequences can be masked at document boundaries (``doc_ids``) so one document never attends to
the previous one in the same row. Parameter names follow Hugging Face's Qwen2 so export is a
plain state-dict copy (see hf_io.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

# Qwen2.5 pads its 151,646-token vocabulary to 151,936 rows for GPU-friendly shapes.
QWEN_VOCAB = 151_936


@dataclass(frozen=True)
class ModelConfig:
    """Shape and positional-encoding settings of one model."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    tie_embeddings: bool = True
    head_dim: int | None = None  # default hidden_size // num_heads
    rope_theta: float = 1_000_000.0
    # YaRN context extension (Qwen2.5-Coder: factor 4 over a 32K original window -> 128K).
    rope_scaling_factor: float | None = None
    rope_original_max_position: int | None = None
    max_position_embeddings: int = 32_768
    rms_norm_eps: float = 1e-6
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.rope_scaling_factor is not None and self.rope_scaling_factor > 1 and not self.rope_original_max_position:
            raise ValueError("YaRN scaling needs rope_original_max_position (the pretraining context length)")

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    def with_(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def num_params(self, embeddings: bool = True) -> int:
        """Parameter count (the LM head counts once when tied)."""
        h, d, kv = self.hidden_size, self.dim_per_head, self.num_kv_heads
        attn = h * self.num_heads * d + self.num_heads * d  # q (+bias)
        attn += 2 * (h * kv * d + kv * d)  # k, v (+bias)
        attn += self.num_heads * d * h  # o
        mlp = 3 * h * self.intermediate_size
        per_layer = attn + mlp + 2 * h
        n = self.num_layers * per_layer + h
        if embeddings:
            n += self.vocab_size * h * (1 if self.tie_embeddings else 2)
        return n


def _preset(hidden: int, layers: int, heads: int, kv: int, inter: int, tied: bool, head_dim: int | None = None,
            vocab: int = QWEN_VOCAB) -> ModelConfig:
    return ModelConfig(vocab_size=vocab, hidden_size=hidden, num_layers=layers, num_heads=heads, num_kv_heads=kv,
                       intermediate_size=inter, tie_embeddings=tied, head_dim=head_dim)


# Qwen2.5-Coder technical report, Table 1 (hidden, layers, query heads, KV heads, intermediate,
# tied embeddings). ``tiny`` and ``small`` are CPU-sized versions with the same structure;
# their vocabulary is replaced by the tokenizer's at training time.
PRESETS: dict[str, ModelConfig] = {
    "tiny": _preset(64, 2, 4, 2, 176, True, vocab=4096),
    "small": _preset(256, 4, 8, 2, 704, True, vocab=16384),
    "0.5B": _preset(896, 24, 14, 2, 4864, True),
    "1.5B": _preset(1536, 28, 12, 2, 8960, True),
    "3B": _preset(2048, 36, 16, 2, 11008, True),
    "7B": _preset(3584, 28, 28, 4, 18944, False),
    "14B": _preset(5120, 48, 40, 8, 13824, False),
    "32B": _preset(5120, 64, 40, 8, 27648, False),
}


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].with_(**overrides)


# --------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_inv_freq(cfg: ModelConfig) -> tuple[torch.Tensor, float]:
    """Inverse frequencies and the cos/sin scale; YaRN (NTK-by-parts + attention temperature)
    when ``rope_scaling_factor`` > 1, computed as in the YaRN paper / Hugging Face."""
    dim, base = cfg.dim_per_head, cfg.rope_theta
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    factor = cfg.rope_scaling_factor
    if not factor or factor <= 1:
        return 1.0 / pos_freqs, 1.0
    orig = cfg.rope_original_max_position
    assert orig is not None

    def correction_dim(rotations: float) -> float:
        return dim * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(32)), 0)  # beta_fast
    high = min(math.ceil(correction_dim(1)), dim - 1)  # beta_slow
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    extrapolation_weight = 1 - ramp
    inv = (1.0 / (factor * pos_freqs)) * (1 - extrapolation_weight) + (1.0 / pos_freqs) * extrapolation_weight
    return inv, 0.1 * math.log(factor) + 1.0


class RotaryEmbedding(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        inv_freq, self.scale = rope_inv_freq(cfg)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq  # [B, T, D/2]
        emb = torch.cat([freqs, freqs], dim=-1)
        return (emb.cos() * self.scale).to(dtype), (emb.sin() * self.scale).to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, T, D]; cos/sin: [B, T, D]. Computed in x's dtype (bf16 q/k stay bf16 under autocast)."""
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return x * cos + _rotate_half(x) * sin


class KVCache:
    """Per-layer keys/values of the tokens seen so far (greedy generation)."""

    def __init__(self, num_layers: int) -> None:
        self.k: list[torch.Tensor | None] = [None] * num_layers
        self.v: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        old_k, old_v = self.k[layer], self.v[layer]
        if old_k is not None and old_v is not None:
            k, v = torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        d = cfg.dim_per_head
        self.layer, self.n_heads, self.n_kv, self.d = layer, cfg.num_heads, cfg.num_kv_heads, d
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * d, bias=True)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * d, bias=True)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * d, bias=True)
        self.o_proj = nn.Linear(cfg.num_heads * d, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.d).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        if mask is None:
            # Pure causal (aligned): the fast path, flash attention with native GQA on GPU.
            y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1, enable_gqa=self.n_kv != self.n_heads)
        else:
            rep = self.n_heads // self.n_kv
            if rep > 1:
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.d))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen2Backbone(nn.Module):
    """Named ``model`` inside Qwen2ForCausalLM so parameter names match Hugging Face's."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


def document_positions(doc_ids: torch.Tensor) -> torch.Tensor:
    """Positions that restart at 0 at every document start of a packed row ([B, T] -> [B, T])."""
    t = doc_ids.shape[1]
    idx = torch.arange(t, device=doc_ids.device).expand_as(doc_ids)
    starts = torch.ones_like(doc_ids, dtype=torch.bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    start_idx = torch.where(starts, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - start_idx


def document_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """Boolean [B, 1, T, T] mask: causal and within the same document (True = may attend)."""
    t = doc_ids.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=doc_ids.device).tril()
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    return (same & causal)[:, None]


class Qwen2ForCausalLM(nn.Module):
    def __init__(self, cfg: ModelConfig, activation_checkpointing: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.activation_checkpointing = activation_checkpointing
        self.model = Qwen2Backbone(cfg)
        self.rotary = RotaryEmbedding(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=self.cfg.init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=self.cfg.init_std)

    def forward(
        self,
        input_ids: torch.Tensor,
        doc_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits [B, T, vocab]. ``doc_ids`` [B, T] masks attention at document boundaries and
        restarts positions per document; ``cache`` appends to (and attends over) past keys."""
        h = self.hidden_states(input_ids, doc_ids, position_ids, cache)
        return self.lm_head(h)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        doc_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        b, t = input_ids.shape
        past = cache.length if cache is not None else 0
        mask = None
        if doc_ids is not None and bool((doc_ids == doc_ids[:, :1]).all()):
            doc_ids = None  # one document per row: plain causal attention (the flash-attention path)
        if doc_ids is not None:
            if cache is not None:
                raise ValueError("doc_ids masking is for packed training rows, not cached generation")
            mask = document_mask(doc_ids)
            if position_ids is None:
                position_ids = document_positions(doc_ids)
        elif past and t > 1:
            # New tokens attend to every cached token and causally among themselves.
            mask = torch.ones(t, past + t, dtype=torch.bool, device=input_ids.device).tril(diagonal=past)
        if position_ids is None:
            position_ids = torch.arange(past, past + t, device=input_ids.device).expand(b, t)
        x = self.model.embed_tokens(input_ids)
        cos, sin = self.rotary(position_ids, x.dtype)
        for layer in self.model.layers:
            if self.activation_checkpointing and self.training and cache is None:
                x = checkpoint(layer, x, cos, sin, mask, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask, cache)
        return self.model.norm(x)

    def masked_loss_sum(
        self,
        input_ids: torch.Tensor,
        targets: torch.Tensor,
        loss_mask: torch.Tensor,
        doc_ids: torch.Tensor | None = None,
        chunk_tokens: int = 0,
    ) -> torch.Tensor:
        """Sum of next-token cross-entropies over ``loss_mask`` (targets already shifted).

        With ``chunk_tokens`` > 0 the [tokens, vocab] logits are never held whole: each chunk's
        logits are computed, reduced and recomputed in backward (with a 151k vocabulary at
        seq_len 4096 the full fp32 logits of one sequence alone take 2.5 GB).
        """
        h = self.hidden_states(input_ids, doc_ids)
        h = h.reshape(-1, h.shape[-1])
        t, m = targets.reshape(-1), loss_mask.reshape(-1).float()
        if chunk_tokens <= 0 or chunk_tokens >= h.shape[0]:
            return _ce_sum(h, self.lm_head.weight, t, m)
        total = h.new_zeros((), dtype=torch.float32)
        for s in range(0, h.shape[0], chunk_tokens):
            e = s + chunk_tokens
            total = total + checkpoint(_ce_sum, h[s:e], self.lm_head.weight, t[s:e], m[s:e], use_reentrant=False)
        return total

    @torch.no_grad()
    def generate(self, input_ids: list[int], max_new_tokens: int, stop_ids: set[int] | frozenset[int] = frozenset(),
                 stop: Any = None) -> list[int]:
        """Greedy decoding with a KV cache; returns only the new tokens (stop token excluded).
        ``stop(new_ids) -> bool`` ends early (e.g. a stop string was produced)."""
        was_training = self.training
        self.eval()
        device = self.lm_head.weight.device
        max_len = self.cfg.max_position_embeddings
        ids = input_ids[-max(1, max_len - max_new_tokens):]
        cache = KVCache(self.cfg.num_layers)
        logits = self(torch.tensor([ids], device=device), cache=cache)
        out: list[int] = []
        for _ in range(max_new_tokens):
            nxt = int(logits[0, -1].argmax())
            if nxt in stop_ids:
                break
            out.append(nxt)
            if stop is not None and stop(out):
                break
            if cache.length >= max_len:
                break
            logits = self(torch.tensor([[nxt]], device=device), cache=cache)
        self.train(was_training)
        return out


def _ce_sum(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logits = F.linear(h, weight).float()
    return (F.cross_entropy(logits, targets, reduction="none") * mask.float()).sum()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
