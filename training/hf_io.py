"""Hugging Face format: ``config.json`` + ``model.safetensors`` with Qwen2 parameter names.

Our module tree mirrors transformers' Qwen2ForCausalLM, so the state dict maps one to one;
a tied LM head is stored once (as transformers does) and re-tied on load. The config carries
both the transformers-5 ``rope_parameters`` and the older ``rope_theta`` / ``rope_scaling``
keys so either major version loads it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from training.model import ModelConfig, Qwen2ForCausalLM

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ModelLoadError(RuntimeError):
    """A model folder is missing files or holds corrupt / mismatched weights (message names the file)."""


def hf_config(cfg: ModelConfig, **extra: Any) -> dict[str, Any]:
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    legacy_scaling = None
    if cfg.rope_scaling_factor and cfg.rope_scaling_factor > 1:
        rope = {
            "rope_type": "yarn",
            "rope_theta": cfg.rope_theta,
            "factor": cfg.rope_scaling_factor,
            "original_max_position_embeddings": cfg.rope_original_max_position,
        }
        legacy_scaling = {k: v for k, v in rope.items() if k != "rope_theta"} | {"type": "yarn"}
    out = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.dim_per_head,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_position_embeddings,
        "rms_norm_eps": cfg.rms_norm_eps,
        "initializer_range": cfg.init_std,
        "tie_word_embeddings": cfg.tie_embeddings,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": legacy_scaling,
        "rope_parameters": rope,
        "use_sliding_window": False,
        "sliding_window": None,
        "attention_dropout": 0.0,
        "use_cache": True,
        "torch_dtype": "float32",
        "codecorpus": {"model_config": cfg.to_dict()},
    }
    return out | extra


def config_from_hf(raw: dict[str, Any]) -> ModelConfig:
    """Our config from a Hugging Face Qwen2 ``config.json`` (ours or a released checkpoint's)."""
    if "codecorpus" in raw and "model_config" in raw["codecorpus"]:
        return ModelConfig.from_dict(raw["codecorpus"]["model_config"])
    rope = raw.get("rope_parameters") or {}
    scaling = raw.get("rope_scaling") or {}
    yarn = rope if rope.get("rope_type") == "yarn" else scaling if scaling.get("type", scaling.get("rope_type")) == "yarn" else {}
    return ModelConfig(
        vocab_size=raw["vocab_size"],
        hidden_size=raw["hidden_size"],
        num_layers=raw["num_hidden_layers"],
        num_heads=raw["num_attention_heads"],
        num_kv_heads=raw.get("num_key_value_heads") or raw["num_attention_heads"],
        intermediate_size=raw["intermediate_size"],
        tie_embeddings=bool(raw.get("tie_word_embeddings", False)),
        head_dim=raw.get("head_dim"),
        rope_theta=float(rope.get("rope_theta") or raw.get("rope_theta") or 10000.0),
        rope_scaling_factor=yarn.get("factor"),
        rope_original_max_position=yarn.get("original_max_position_embeddings"),
        max_position_embeddings=raw.get("max_position_embeddings", 32768),
        rms_norm_eps=raw.get("rms_norm_eps", 1e-6),
        init_std=raw.get("initializer_range", 0.02),
    )


def state_dict_for_export(model: Qwen2ForCausalLM) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    return sd


def save_hf(model: Qwen2ForCausalLM, cfg: ModelConfig | None, out_dir: str, **config_extra: Any) -> list[str]:
    """Write ``config.json`` and ``model.safetensors`` into ``out_dir``; returns the file names.

    Callers that publish a shard set pass the writer's temporary folder so the files are
    committed atomically with the manifest.
    """
    os.makedirs(out_dir, exist_ok=True)
    save_weights(model, os.path.join(out_dir, WEIGHTS_FILE))
    save_config(cfg or model.cfg, os.path.join(out_dir, CONFIG_FILE), **config_extra)
    return [CONFIG_FILE, WEIGHTS_FILE]


def save_weights(model: Qwen2ForCausalLM, path: str) -> None:
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    sd = {k: v.to("cpu") for k, v in state_dict_for_export(model).items()}
    save_file(sd, path, metadata={"format": "pt"})


def save_config(cfg: ModelConfig, path: str, **config_extra: Any) -> None:
    with open(path, "w") as fh:
        json.dump(hf_config(cfg, **config_extra), fh, indent=2, sort_keys=True)


def load_config(model_dir: str) -> ModelConfig:
    path = os.path.join(model_dir, CONFIG_FILE)
    try:
        with open(path) as fh:
            return config_from_hf(json.load(fh))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: missing; is {model_dir} a model folder (config.json + model.safetensors)?") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a valid Qwen2 config ({exc})") from exc


def load_hf(model_dir: str, device: str | torch.device = "cpu", **config_overrides: Any) -> tuple[Qwen2ForCausalLM, ModelConfig]:
    """Load a model folder written by save_hf (or a Hugging Face Qwen2 checkpoint).

    ``config_overrides`` change non-shape settings on load (stage 2 raises ``rope_theta`` and
    ``max_position_embeddings``).
    """
    cfg = load_config(model_dir)
    if config_overrides:
        cfg = cfg.with_(**config_overrides)
    path = os.path.join(model_dir, WEIGHTS_FILE)
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: missing weights file")
    try:
        sd = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: corrupt or truncated safetensors file ({exc})") from exc
    with torch.device("meta"):
        model = Qwen2ForCausalLM(cfg)
    if cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    expected = set(state_dict_for_export(model))
    missing, unexpected = expected - set(sd), set(sd) - expected
    if missing or unexpected:
        raise ModelLoadError(
            f"{path}: weights do not match config.json (missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )
    for k, v in sd.items():
        shape = model.state_dict()[k].shape
        if v.shape != shape:
            raise ModelLoadError(f"{path}: tensor {k} has shape {tuple(v.shape)}, config expects {tuple(shape)}")
    model = model.to_empty(device=device)
    model.load_state_dict(sd, strict=False)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.rotary = type(model.rotary)(cfg).to(device)
    return model, cfg
