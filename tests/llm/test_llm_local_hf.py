"""The local Hugging Face-format backend on a tiny randomly initialised Qwen2 written to disk."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402

from corpus.llm import LLMError, LocalHFBackend, render_chatml  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_qwen2")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = ["def add(a, b):\n    return a + b\n", "Write a function that adds two numbers."] * 20
    tok.train_from_iterator(text, trainer)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    tok.save(str(d / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=256)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(str(d))
    return d


def test_render_chatml():
    s = render_chatml([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert s == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"


def test_generates_deterministically_and_caches(model_dir, tmp_path):
    b = LocalHFBackend(str(model_dir), cache_dir=str(tmp_path / "c"), max_context=256)
    assert b.engine == "transformers"
    msgs = [{"role": "user", "content": "Write a function that adds two numbers."}]
    c1 = b.chat(msgs, max_tokens=8)
    assert 0 < c1.completion_tokens <= 8 and c1.prompt_tokens > 5
    b2 = LocalHFBackend(str(model_dir), max_context=256)
    assert b2.chat(msgs, max_tokens=8).text == c1.text  # greedy decoding is deterministic
    s1 = b2.chat(msgs, max_tokens=8, temperature=1.0, seed=5)
    s2 = b2.chat(msgs, max_tokens=8, temperature=1.0, seed=5)
    assert s1.text == s2.text
    again = LocalHFBackend(str(model_dir), cache_dir=str(tmp_path / "c")).chat(msgs, max_tokens=8)
    assert again.cached and again.text == c1.text


def test_prompt_too_long_is_a_counted_error(model_dir):
    b = LocalHFBackend(str(model_dir), max_context=16)
    out = b.chat_many([[{"role": "user", "content": "add two numbers " * 20}]])
    assert isinstance(out[0], LLMError) and out[0].reason == "prompt_too_long"
    assert b.usage.failure_reasons == {"prompt_too_long": 1}


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(LLMError, match="config.json"):
        LocalHFBackend(str(tmp_path))


def test_chat_generator_on_local_model_counts_unusable_output(model_dir):
    """A (random) local model writes no code blocks: every snippet is skipped with a reason."""
    from corpus.instruct.candidates import ChatGenerator

    gen = ChatGenerator(LocalHFBackend(str(model_dir), max_context=512), max_tokens=6)
    snip = {"id": "s1", "language": "python", "kind": "function", "name": "add",
            "code": "def add(a, b):\n    '''Add.'''\n    return a + b", "docstring": "Add.", "signature": "def add(a, b)"}
    skips: dict[str, int] = {}
    assert gen.generate([snip, dict(snip, id="s2")], skips) == []
    assert skips == {"llm_no_code_block": 2}
    assert gen.backend.usage.requests == 4  # instruction + answer for each snippet


def test_training_library_fallback_engine(model_dir, tmp_path):
    """Without transformers the backend loads a training/ export through training.hf_io."""
    hf_io = pytest.importorskip("training.hf_io")
    from training.model import ModelConfig, Qwen2ForCausalLM

    torch.manual_seed(1)
    vocab = LocalHFBackend(str(model_dir))._tok.tok.get_vocab_size()
    cfg = ModelConfig(vocab_size=vocab, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                      intermediate_size=64, max_position_embeddings=256)
    out = tmp_path / "export"
    hf_io.save_hf(Qwen2ForCausalLM(cfg), cfg, str(out))
    b = LocalHFBackend(str(out), tokenizer_path=str(model_dir / "tokenizer.json"), prefer_transformers=False,
                       max_context=256)
    assert b.engine == "training"
    msgs = [{"role": "user", "content": "add two numbers"}]
    c1, c2 = b.chat(msgs, max_tokens=5), b.chat(msgs, max_tokens=5)
    assert c1.text == c2.text and 0 < c1.completion_tokens <= 5
