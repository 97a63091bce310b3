#!/usr/bin/env python3
"""Reference figures from llama.cpp (through PyPI's llama-cpp-python) for `paratool bench runtime`.

Measures, on one GGUF file and with the same prompt lengths and token ids as the Swift
benchmark: load time, prefill tokens/s at each prompt length, greedy decode tokens/s and peak
RSS. Prints one JSON object on stdout. Install: pip install llama-cpp-python==0.3.36 diskcache
(builds llama.cpp from source, about 5 minutes on 2 cores).
"""
import argparse
import json
import resource
import sys
import time


def peak_rss_mb():
    """This process's own peak RSS. getrusage's ru_maxrss survives fork+exec, so a child of a
    large process would report its parent's size; VmHWM belongs to this address space only."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--prefill", default="32,256,1024", help="comma-separated prompt lengths")
    ap.add_argument("--decode", type=int, default=128, help="tokens to decode after a 32-token prompt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    try:
        import numpy as np
        from llama_cpp import Llama
    except ImportError as e:  # the caller reports the reference as unavailable
        print(json.dumps({"error": f"llama-cpp-python not importable: {e}"}))
        return 0

    lengths = [int(x) for x in args.prefill.split(",") if x]
    t0 = time.perf_counter()
    llm = Llama(model_path=args.model, n_ctx=max(lengths + [32 + args.decode]) + 8,
                n_batch=max(lengths), n_threads=args.threads, n_threads_batch=args.threads,
                logits_all=False, verbose=False)
    load_s = time.perf_counter() - t0
    vocab = llm.n_vocab()
    rng = np.random.default_rng(args.seed)

    prefill = {}
    for n in lengths:
        ids = [int(x) for x in rng.integers(100, vocab, size=n)]
        best = float("inf")
        for _ in range(args.repeats):
            llm.reset()
            t = time.perf_counter()
            llm.eval(ids)
            best = min(best, time.perf_counter() - t)
        prefill[str(n)] = n / best

    prompt = [int(x) for x in rng.integers(100, vocab, size=32)]
    best = float("inf")
    for _ in range(args.repeats):
        llm.reset()
        llm.eval(prompt)
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        t = time.perf_counter()
        for _ in range(args.decode):
            llm.eval([tok])
            tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        best = min(best, time.perf_counter() - t)
    decode = args.decode / best

    rss_mb = peak_rss_mb()
    print(json.dumps({"load_s": load_s, "prefill_tps": prefill, "decode_tps": decode,
                      "peak_rss_mb": rss_mb, "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
