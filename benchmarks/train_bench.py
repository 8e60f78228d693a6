"""Training throughput: our Qwen2 (training/) vs Hugging Face transformers, same model, same data.

Both sides train the same preset from the same weights on the same batches (real source files
from this machine, or a token shard set with --data) with the same plain step: bf16 autocast
over fp32 master weights, fused AdamW, next-token cross-entropy. Ours may additionally use
torch.compile (default on CUDA) - the point of owning the model code. Prints tokens/s, MFU
and peak memory for each and the ratio.

GPU (the issue's target: >= 45% MFU, >= 1.3x transformers):
    python benchmarks/train_bench.py --preset 0.5B --seq-len 4096 --batch 2 --steps 20
CPU smoke run:
    python benchmarks/train_bench.py --device cpu --preset tiny --seq-len 256 --batch 4 --steps 6
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.hf_io import save_hf  # noqa: E402
from training.mfu import flops_per_token, peak_flops  # noqa: E402
from training.model import Qwen2ForCausalLM, get_preset  # noqa: E402


def real_batches(n: int, batch: int, seq: int, vocab: int, data: str | None, seed: int = 0) -> list[torch.Tensor]:
    """``n`` batches [batch, seq + 1] of real tokens: a token shard set, or the bytes of the
    Python stdlib's source files (byte values as token ids) packed back to back."""
    if data:
        from training.data import TokenShardDataset

        ds = TokenShardDataset(data)
        if ds.seq_len < seq + 1:
            raise SystemExit(f"--data has seq_len {ds.seq_len}; need >= {seq + 1}")
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(ds), size=(n, batch), replace=len(ds) < n * batch)
        return [torch.from_numpy(ds.rows(r)[0][:, : seq + 1].astype(np.int64) % vocab) for r in rows]
    need = n * batch * (seq + 1)
    buf = bytearray()
    for f in sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "**", "*.py"), recursive=True)):
        with open(f, "rb") as fh:
            buf += fh.read()
        if len(buf) >= need:
            break
    arr = np.frombuffer(bytes(buf[:need]), dtype=np.uint8).astype(np.int64)
    if arr.size < need:
        arr = np.resize(arr, need)
    return [torch.from_numpy(x) for x in arr.reshape(n, batch, seq + 1)]


def step_fn(model: torch.nn.Module, opt: torch.optim.Optimizer, hf: bool, amp: torch.dtype | None, device: str,
            loss_fn=None):
    def step(batch: torch.Tensor) -> torch.Tensor:
        x, y = batch[:, :-1], batch[:, 1:]
        with torch.autocast(device.split(":")[0], dtype=amp) if amp else torch.autocast("cpu", enabled=False):
            if loss_fn is not None:  # ours, chunked cross-entropy (no full [tokens, vocab] logits)
                loss = loss_fn(x, y, torch.ones_like(y, dtype=torch.bool)) / y.numel()
            else:
                logits = model(input_ids=x).logits if hf else model(x)
        if loss_fn is None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def measure(name: str, model: torch.nn.Module, batches: list[torch.Tensor], warmup: int, device: str,
            amp: torch.dtype | None, hf: bool, cfg, seq: int, loss_fn=None) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=device.startswith("cuda"))
    step = step_fn(model, opt, hf, amp, device, loss_fn)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    losses = []
    t0 = None
    for i, b in enumerate(batches):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        losses.append(step(b.to(device, non_blocking=True)))
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - (t0 or time.perf_counter())
    timed = len(batches) - warmup
    tps = timed * batches[0].shape[0] * seq / dt if dt > 0 else float("nan")
    peak = peak_flops(device, amp or torch.float32)
    res = {
        "impl": name, "tokens_per_s": tps, "step_s": dt / max(1, timed),
        "mfu": tps * flops_per_token(cfg, seq) / peak if peak else None,
        "first_loss": float(losses[0]), "last_loss": float(losses[-1]),
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }
    mfu = f"{res['mfu'] * 100:.1f}%" if res["mfu"] is not None else "n/a"
    mem = f", peak mem {res['peak_mem_gb']:.1f} GiB" if res["peak_mem_gb"] is not None else ""
    print(f"{name:>14}: {tps:,.0f} tok/s, {res['step_s'] * 1000:.0f} ms/step, MFU {mfu}{mem}, "
          f"loss {res['first_loss']:.3f} -> {res['last_loss']:.3f}", flush=True)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="0.5B")
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps per implementation")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile, allocator)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=["bf16", "fp32"], default=None, help="default: bf16 on CUDA, fp32 on CPU")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto", help="torch.compile ours (auto: CUDA)")
    p.add_argument("--activation-checkpointing", action="store_true", help="ours only")
    p.add_argument("--loss-chunk-tokens", type=int, default=0, help="ours only: chunked cross-entropy")
    p.add_argument("--data", help="token shard set to draw batches from (default: stdlib source bytes)")
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--rounds", type=int, default=1, help="alternate ours / transformers N times; report medians")
    p.add_argument("--json", help="write results here")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda but no CUDA device; use --device cpu --preset tiny for the smoke run")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    amp = {"bf16": torch.bfloat16, "fp32": None}[args.precision or ("bf16" if cuda else "fp32")]
    compile_ours = args.compile == "on" or (args.compile == "auto" and cuda)
    cfg = get_preset(args.preset, max_position_embeddings=max(args.seq_len, 4096))
    batches = real_batches(args.warmup + args.steps, args.batch, args.seq_len, cfg.vocab_size, args.data)
    dev_name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"preset {args.preset} ({cfg.num_params() / 1e6:.1f}M params), seq_len {args.seq_len}, batch "
          f"{args.batch}, {args.steps} timed steps after {args.warmup} warm-up, {dev_name}, "
          f"{'bf16 autocast' if amp else 'fp32'}; ours compiled: {compile_ours}", flush=True)

    torch.manual_seed(0)
    init = Qwen2ForCausalLM(cfg)
    tmp = tempfile.mkdtemp(prefix="train_bench_")
    save_hf(init, cfg, tmp)  # both sides start every round from exactly these weights
    del init

    def run_ours() -> dict:
        from training.hf_io import load_hf

        ours, _ = load_hf(tmp, device=device)
        ours.activation_checkpointing = args.activation_checkpointing
        ours.train()
        model = torch.compile(ours) if compile_ours else ours
        loss_fn = None
        if args.loss_chunk_tokens:
            f = torch.compile(ours.masked_loss_sum) if compile_ours else ours.masked_loss_sum

            def loss_fn(x, y, m):
                return f(x, y, m, None, args.loss_chunk_tokens)

        return measure("codecorpus", model, batches, args.warmup, device, amp, False, cfg, args.seq_len, loss_fn)

    def run_hf() -> dict:
        import transformers

        hf = transformers.Qwen2ForCausalLM.from_pretrained(tmp, attn_implementation="sdpa", dtype=torch.float32)
        hf = hf.to(device).train()
        hf.config.use_cache = False
        return measure("transformers", hf, batches, args.warmup, device, amp, True, cfg, args.seq_len)

    def free() -> None:
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()

    rounds: list[list[dict]] = []
    for r in range(args.rounds):  # alternate the two so a noisy neighbour hits both alike
        if args.rounds > 1:
            print(f"round {r + 1}/{args.rounds}", flush=True)
        this = [run_ours()]
        free()
        if not args.skip_hf:
            this.append(run_hf())
            free()
        rounds.append(this)
    results: list[dict] = [x for rnd in rounds for x in rnd]
    if not args.skip_hf:
        ours_tps = float(np.median([rnd[0]["tokens_per_s"] for rnd in rounds]))
        hf_tps = float(np.median([rnd[1]["tokens_per_s"] for rnd in rounds]))
        ratio = ours_tps / hf_tps
        label = f"median of {args.rounds} rounds: " if args.rounds > 1 else ""
        print(f"{label}codecorpus {ours_tps:,.0f} tok/s, transformers {hf_tps:,.0f} tok/s")
        print(f"ratio codecorpus / transformers: {ratio:.2f}x")
        results.append({"ratio": ratio, "codecorpus_tokens_per_s": ours_tps, "transformers_tokens_per_s": hf_tps})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "device": dev_name, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
