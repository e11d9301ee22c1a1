"""Throughput benchmark: figures, not assertions (run it on the hardware you care about).

In one process and on the same records it measures
  (a) a naive loop: one prompt at a time through Outlines + transformers, README head
      and the full tag list in the prompt, the 90-tag constraint as a JSON schema;
  (b) Outlines' own ``Generator.batch`` on the same prompts;
  (c) ``tagsmith batch`` (lexicon workers + constrained batched decoder, ``--mode``);
  (d) tagsmith rules-only, in one process and as ``tagsmith batch`` with a worker per core;
  (e) tagsmith's decode loop alone, on proposals prepared beforehand (the model
      process's ceiling when lexicon workers keep up);
  (f) on CPU, (c) in the other dtype (float32 where the CPU default is bfloat16);
and prints items/s, the ratio to (a) and (b), peak RSS and peak GPU memory.

    python bench/throughput.py --items 1000                       # embedded SmolLM2-135M
    python bench/throughput.py --items 1000 --random-init qwen2.5-1.5b
    python bench/throughput.py --items 1000 --random-init smollm2-135m --tokenizer tokenizer   # GPU host, no GGUF
    python bench/throughput.py --items 1000 --random-init tiny-2l --skip a,b,c,d   # host-side ceiling
    python bench/throughput.py --items 24 --outlines-batch 8      # a CPU-sized run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RANDOM_CONFIGS = {
    # Next to no compute: what is left is the host's share (prompts, constraint masks,
    # Python per token), the ceiling the GPU run cannot pass.
    "tiny-2l": dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=1, vocab_size=49152, max_position_embeddings=8192),
    # Shapes of the public Qwen2.5 configs; weights are random (same compute as trained).
    # The embedded SmolLM2-135M's shape: the 135M figures on a host without its GGUF.
    "smollm2-135m": dict(model_type="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192,
                         rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=2),
    "qwen2.5-0.5b": dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, tie_word_embeddings=True, rms_norm_eps=1e-6),
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, tie_word_embeddings=True, rms_norm_eps=1e-6),
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(args):
    import torch

    from engine.decision.model import LoadedModel, _pick_device, load_model

    if args.tokenizer and args.random_init:
        # Random weights need only the tokenizer: no 94 MiB GGUF to carry to the host.
        from transformers import AutoTokenizer

        device, dtype = _pick_device(args.device)
        tok = AutoTokenizer.from_pretrained(args.tokenizer)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        base = LoadedModel(None, tok, "tokenizer-only", device, str(dtype).removeprefix("torch."))
    else:
        base = load_model(args.model, args.device)
    if not args.random_init:
        return base
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = RANDOM_CONFIGS.get(args.random_init)
    if spec is None:
        spec = json.loads(Path(args.random_init).read_text())
    cfg = AutoConfig.for_model(**spec)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if base.device.startswith("cuda") else torch.float32)
    model.to(base.device).eval()
    # The embedded tokenizer's ids fit in the larger vocabulary; logits keep the real width.
    return LoadedModel(model, base.tokenizer, f"random:{args.random_init}", base.device, base.dtype)


def naive_prompt(tokenizer, text: str, names: list[str], n: int) -> str:
    user = (f"Assign at most {n} tags to this project, only from this list: {', '.join(names)}.\n\n"
            f"Project description:\n{text[:4000]}")
    msgs = [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) if tokenizer.chat_template else user


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "dev.jsonl"))
    ap.add_argument("--taxonomy", default=str(ROOT.parent / "shared" / "data" / "taxonomy.json"))
    ap.add_argument("--items", type=int, default=1000, help="records (the data repeated to this many)")
    ap.add_argument("--naive-items", type=int, default=None, help="items for the naive loop (default: min(items, 32))")
    ap.add_argument("--model", default=None)
    ap.add_argument("--random-init", default=None, help="smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b, tiny-2l or a config.json")
    ap.add_argument("--tokenizer", default=None, help="with --random-init: a tokenizer folder (the bundle's tokenizer/), "
                    "so the embedded model need not be installed")
    ap.add_argument("--device", default=None)
    ap.add_argument("--outlines-batch", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=None, help="tagsmith batch size (default: chosen for the device)")
    ap.add_argument("--overlap", type=int, default=None, help="tagsmith batches decoded at once (default: chosen for the device)")
    ap.add_argument("--mode", default="hybrid", choices=["hybrid", "llm"])
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--skip", default="", help="comma list of a,b,c,d,e,f to skip")
    ap.add_argument("--workers", type=int, default=None,
                    help="lexicon workers (default: rules-only all cores; with a model, cores-1 up to 8 on GPU, none on CPU)")
    args = ap.parse_args()

    import torch

    from engine import Tagger
    from engine.decision.constraint import build_regex
    from engine.io.batch import BatchJob
    from engine.taxonomy import Taxonomy

    tax = Taxonomy.load(args.taxonomy)
    base = [json.loads(l) for l in open(args.data) if l.strip()]
    records = [{"id": f"{i}", "text": base[i % len(base)]["text"]} for i in range(args.items)]
    lm = load(args)
    skip = set(args.skip.split(","))
    cuda = lm.device.startswith("cuda")
    rows = []

    def measure(label, fn, n):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        gpu = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
        rows.append((label, n, n / secs, peak_rss_mib(), gpu))
        print(f"{label}: {n / secs:.2f} items/s ({n} items, {secs:.1f} s)", file=sys.stderr, flush=True)

    regex = build_regex(tax.names, 3)
    if not {"a", "b"} <= skip:
        import outlines

        om = outlines.from_transformers(lm.model, lm.tokenizer)
        t0 = time.perf_counter()
        gen = outlines.Generator(om, outlines.types.Regex(regex))
        print(f"outlines constraint compile: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
        prompts = [naive_prompt(lm.tokenizer, r["text"], tax.names, 3) for r in records]
        lm.tokenizer.padding_side = "left"
    if "a" not in skip:
        n_naive = args.naive_items or min(args.items, 32)
        measure("(a) naive Outlines loop", lambda: [gen(p, max_new_tokens=args.max_new_tokens) for p in prompts[:n_naive]], n_naive)
    if "b" not in skip:
        def outlines_batch():
            for s in range(0, len(prompts), args.outlines_batch):
                gen.batch(prompts[s:s + args.outlines_batch], max_new_tokens=args.max_new_tokens)
        measure(f"(b) Outlines Generator.batch@{args.outlines_batch}", outlines_batch, len(prompts))
    tmp = tempfile.TemporaryDirectory()  # the batch job's input and output, for (c) and (d)
    src, dst = Path(tmp.name, "in.jsonl"), Path(tmp.name, "out.jsonl")
    if not {"c", "d", "f"} <= skip:
        src.write_text("".join(json.dumps(r) + "\n" for r in records))
    cores = os.cpu_count() or 1
    if "c" not in skip:
        tagger = Tagger(mode=args.mode, lm=lm, batch_size=args.batch_size, overlap=args.overlap)
        tagger.compiler.get(tax, 3)  # compile once, outside the timing, as a long job would
        # On a GPU, lexicon workers feed the model; on CPU the model needs the cores.
        workers = args.workers or (max(1, min(cores - 1, 8)) if cuda else 1)
        job = BatchJob(tagger, tax, workers=workers)
        label = f"(c) tagsmith batch {args.mode}@{tagger.batch_size}x{tagger.overlap}, {workers} worker{'s' if workers > 1 else ''}"
        measure(label, lambda: job.run(str(src), str(dst)), len(records))
    if "f" not in skip and not cuda and not args.random_init:
        # The same job in the other dtype: float32 where bfloat16 is the default (a CPU
        # with native bfloat16), else bfloat16 (--dtype), for the ratio in one run.
        from engine.decision.model import load_model

        other = "float32" if lm.dtype == "bfloat16" else "bfloat16"
        alt = load_model(args.model, "cpu", dtype=other)
        tagger = Tagger(mode=args.mode, lm=alt, batch_size=args.batch_size, overlap=args.overlap)
        tagger.compiler.get(tax, 3)
        job = BatchJob(tagger, tax, workers=args.workers or 1)
        measure(f"(f) tagsmith batch {args.mode}@{tagger.batch_size}, {other}", lambda: job.run(str(src), str(dst)), len(records))
        del alt, tagger, job
    if "e" not in skip:
        # The decode loop alone, on proposals prepared beforehand (as lexicon workers
        # deliver them): the model process's own ceiling, whatever the lexicon's speed.
        tagger = Tagger(mode=args.mode, lm=lm, batch_size=args.batch_size, overlap=args.overlap)
        distinct = tagger.prepare(tagger.propose(records[:len(base)], tax), tax)
        ready = [distinct[i % len(distinct)] for i in range(len(records))]
        tagger.decide(ready[:tagger.batch_size], tax)  # compile and prefill the prefix once, as a long job would
        measure(f"(e) tagsmith decide only {args.mode}@{tagger.batch_size}x{tagger.overlap}", lambda: tagger.decide(ready, tax), len(records))
    if "d" not in skip:
        rules = Tagger(mode="rules")
        rules.tag_many(records[:len(base)], taxonomy=tax)  # compile and warm once, as a long job would
        measure("(d) tagsmith rules-only, 1 process", lambda: rules.tag_many(records, taxonomy=tax), len(records))
        workers = args.workers or cores
        job = BatchJob(rules, tax, workers=workers)
        measure(f"(d) tagsmith batch rules-only, {workers} workers", lambda: job.run(str(src), str(dst)), len(records))

    ref = {r[0][:3]: r[2] for r in rows}
    print(f"\nmodel={lm.name} device={lm.device} dtype={lm.dtype} torch={torch.__version__}")
    print(f"{'run':<40} {'items':>6} {'items/s':>9} {'x naive':>8} {'x outl.batch':>12} {'peak RSS MiB':>13} {'peak GPU MiB':>13}")
    for label, n, ips, rss, gpu in rows:
        xa = f"{ips / ref['(a)']:.2f}" if "(a)" in ref else "-"
        xb = f"{ips / ref['(b)']:.2f}" if "(b)" in ref else "-"
        print(f"{label:<40} {n:>6} {ips:>9.2f} {xa:>8} {xb:>12} {rss:>13.0f} {gpu:>13.0f}")


if __name__ == "__main__":
    main()
