"""The Qwen2 model: presets, masking, cache, and equality with transformers' Qwen2."""

from __future__ import annotations

import pytest
import torch

from training.hf_io import ModelLoadError, load_hf, save_hf
from training.model import PRESETS, KVCache, ModelConfig, Qwen2ForCausalLM, document_positions, get_preset


def _perturbed(cfg: ModelConfig, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    m = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial biases / norm weights so export bugs show up
        for n, p in m.named_parameters():
            if "bias" in n or "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    return m


def test_presets_match_report_table():
    # Qwen2.5-Coder report, Table 1: (hidden, layers, heads, kv heads, intermediate, tied)
    table = {"0.5B": (896, 24, 14, 2, 4864, True), "1.5B": (1536, 28, 12, 2, 8960, True),
             "3B": (2048, 36, 16, 2, 11008, True), "7B": (3584, 28, 28, 4, 18944, False),
             "14B": (5120, 48, 40, 8, 13824, False), "32B": (5120, 64, 40, 8, 27648, False)}
    for name, (h, n_layers, heads, kv, inter, tied) in table.items():
        c = PRESETS[name]
        assert (c.hidden_size, c.num_layers, c.num_heads, c.num_kv_heads, c.intermediate_size, c.tie_embeddings) == (
            h, n_layers, heads, kv, inter, tied)
    # Parameter counts land on the advertised sizes (0.49B and 7.6B in the released configs).
    assert 0.45e9 < PRESETS["0.5B"].num_params() < 0.52e9
    assert 7.4e9 < PRESETS["7B"].num_params() < 7.8e9
    with pytest.raises(ValueError, match="unknown model preset"):
        get_preset("huge")


def test_num_params_matches_module():
    cfg = get_preset("tiny", vocab_size=300)
    m = Qwen2ForCausalLM(cfg)
    assert cfg.num_params() == sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())


@pytest.mark.parametrize("overrides", [
    {},
    {"tie_embeddings": False, "rope_theta": 10_000.0},
    {"rope_scaling_factor": 4.0, "rope_original_max_position": 64, "max_position_embeddings": 256},
])
def test_logits_equal_transformers_qwen2(tmp_path, overrides):
    transformers = pytest.importorskip("transformers")
    cfg = get_preset("tiny", vocab_size=300, **overrides)
    ours = _perturbed(cfg)
    save_hf(ours, cfg, str(tmp_path))
    hf = transformers.Qwen2ForCausalLM.from_pretrained(str(tmp_path), attn_implementation="eager").eval()
    x = torch.randint(0, 300, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(x) - hf(x).logits).abs().max().item()
    assert diff < 1e-4
    back, cfg2 = load_hf(str(tmp_path))
    assert cfg2 == cfg
    with torch.no_grad():
        assert torch.equal(back(x), ours(x))


def test_document_mask_isolates_documents():
    cfg = get_preset("tiny", vocab_size=100)
    m = _perturbed(cfg)
    a = torch.randint(0, 100, (1, 12), generator=torch.Generator().manual_seed(2))
    b = torch.randint(0, 100, (1, 9), generator=torch.Generator().manual_seed(3))
    packed = torch.cat([a, b], dim=1)
    docs = torch.tensor([[0] * 12 + [1] * 9])
    with torch.no_grad():
        got = m(packed, doc_ids=docs)
        alone_a, alone_b = m(a), m(b)
        leaky = m(packed)
    # With the mask, the second document is computed exactly as if it stood alone (positions restart).
    assert torch.allclose(got[:, :12], alone_a, atol=1e-5)
    assert torch.allclose(got[:, 12:], alone_b, atol=1e-5)
    assert not torch.allclose(leaky[:, 12:], alone_b, atol=1e-3)
    assert document_positions(docs).tolist() == [list(range(12)) + list(range(9))]


def test_kv_cache_and_generate_match_full_forward():
    cfg = get_preset("tiny", vocab_size=120)
    m = _perturbed(cfg)
    x = torch.randint(0, 120, (1, 25), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = m(x)
        cache = KVCache(cfg.num_layers)
        parts = torch.cat([m(x[:, :10], cache=cache), m(x[:, 10:20], cache=cache), m(x[:, 20:], cache=cache)], 1)
    assert torch.allclose(full, parts, atol=1e-5)
    new = m.generate(x[0].tolist(), max_new_tokens=6)
    ids = x[0].tolist()
    for _ in range(6):  # greedy without a cache
        with torch.no_grad():
            ids.append(int(m(torch.tensor([ids]))[0, -1].argmax()))
    assert new == ids[25:]


def test_load_hf_reports_corrupt_and_mismatched_files(tmp_path):
    cfg = get_preset("tiny", vocab_size=100)
    save_hf(Qwen2ForCausalLM(cfg), cfg, str(tmp_path / "ok"))
    with pytest.raises(ModelLoadError, match="config.json: missing"):
        load_hf(str(tmp_path / "nothing"))
    w = tmp_path / "ok" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="model.safetensors: corrupt"):
        load_hf(str(tmp_path / "ok"))
    save_hf(Qwen2ForCausalLM(cfg), cfg, str(tmp_path / "m2"))
    bigger = get_preset("tiny", vocab_size=101)
    save_hf(Qwen2ForCausalLM(bigger), bigger, str(tmp_path / "m3"))
    (tmp_path / "m2" / "model.safetensors").write_bytes((tmp_path / "m3" / "model.safetensors").read_bytes())
    with pytest.raises(ModelLoadError, match="shape"):
        load_hf(str(tmp_path / "m2"))


def test_activation_checkpointing_gives_identical_gradients():
    cfg = get_preset("tiny", vocab_size=200)
    x = torch.randint(0, 200, (2, 48), generator=torch.Generator().manual_seed(5))
    docs = torch.tensor([[0] * 20 + [1] * 28, [0] * 48])
    grads = []
    for ac in (False, True):
        m = _perturbed(cfg).train()
        m.activation_checkpointing = ac
        m(x, doc_ids=docs).logsumexp(-1).mean().backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n


def test_yarn_changes_only_low_frequencies():
    from training.model import rope_inv_freq
    base = get_preset("tiny", vocab_size=10)
    yarn = base.with_(rope_scaling_factor=4.0, rope_original_max_position=64)
    f0, s0 = rope_inv_freq(base)
    f1, s1 = rope_inv_freq(yarn)
    assert s0 == 1.0 and s1 == pytest.approx(0.1 * torch.log(torch.tensor(4.0)).item() + 1)
    assert f1[0] == f0[0] and bool((f1 <= f0).all())  # highest frequency unchanged, none raised
    assert torch.allclose(f1[-1], f0[-1] / 4)  # the lowest frequency is interpolated by the factor
    with pytest.raises(ValueError, match="rope_original_max_position"):
        base.with_(rope_scaling_factor=2.0)


def test_chunked_loss_equals_full_logits_loss():
    import torch.nn.functional as F
    cfg = get_preset("tiny", vocab_size=300)
    x = torch.randint(0, 300, (2, 33), generator=torch.Generator().manual_seed(6))
    inp, tgt = x[:, :-1], x[:, 1:]
    mask = torch.ones_like(tgt, dtype=torch.bool)
    mask[1, 20:] = False
    results = []
    for chunk in (0, 7):
        m = _perturbed(cfg).train()
        if chunk:
            loss = m.masked_loss_sum(inp, tgt, mask, chunk_tokens=chunk)
        else:
            ce = F.cross_entropy(m(inp).reshape(-1, 300), tgt.reshape(-1), reduction="none")
            loss = (ce * mask.reshape(-1)).sum()
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    assert torch.allclose(results[0][0], results[1][0], rtol=1e-5)
    for n in results[0][1]:
        assert torch.allclose(results[0][1][n], results[1][1][n], atol=1e-6, rtol=1e-4), n
