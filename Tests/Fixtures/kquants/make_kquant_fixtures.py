#!/usr/bin/env python3
"""Writes the K-quant oracle fixtures with llama.cpp's own tools (gguf-py and llama.cpp through
llama-cpp-python). Nothing here comes from ParaTool.

    python3 make_kquant_fixtures.py blocks   # blocks.gguf + blocks_expected.json   (gguf-py only)
    python3 make_kquant_fixtures.py model    # tiny-llama-Q4_K_M.gguf, tiny-llama-Q5_K_M.gguf,
                                             # expected.json                        (+ llama-cpp-python)

blocks: one tensor per format (Q5_0 and Q5_1 quantised by gguf.quants.quantize from seeded normal
data; Q4_K, Q5_K and Q6_K as seeded random blocks with their half-precision scales set to sane
ranges, since gguf-py has no K-quant quantiser; one Q2_K tensor, a type ParaTool does not read),
written by gguf.GGUFWriter and read back with gguf.GGUFReader; the expected values are
gguf.quants.dequantize's.

model: a tiny synthetic Llama (hidden 256, FFN 512, 2 layers, 4 heads of 64, 2 KV heads, byte-level
BPE vocabulary of 384 with the
"smollm" pre-tokenizer, an output head of its own) with seeded random weights, written as F32 by GGUFWriter
to a temporary file, then quantised by llama.cpp (llama_cpp.llama_model_quantize, ftypes
LLAMA_FTYPE_MOSTLY_Q4_K_M and LLAMA_FTYPE_MOSTLY_Q5_K_M). expected.json holds, per file, what
gguf-py reads (tensor types, and the first and last 64 dequantised values of a few tensors) and
what llama.cpp computes (prompt ids, logits, greedy continuation).
"""
import json
import os
import sys
import tempfile
import hashlib

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize

HERE = os.path.dirname(os.path.abspath(__file__))


def version(package):
    from importlib.metadata import version as v
    return v(package)


# MARK: - blocks

def random_blocks(rng, qtype, n_blocks):
    """Random bytes for n_blocks of qtype, with the half-precision scale fields set to sane values."""
    _, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)

    def half(at, lo, hi):
        raw[:, at:at + 2] = rng.uniform(lo, hi, size=n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)

    if qtype in (Q.Q4_K, Q.Q5_K):
        half(0, 0.0005, 0.01)   # d
        half(2, 0.0, 0.01)      # dmin
    elif qtype == Q.Q6_K:
        half(208, 0.0001, 0.005)  # d (after ql, qh, scales)
    elif qtype == Q.Q2_K:
        half(80, 0.001, 0.01)
        half(82, 0.0, 0.01)
    return raw


def blocks():
    rng = np.random.default_rng(20261207)
    path = os.path.join(HERE, "blocks.gguf")
    w = gguf.GGUFWriter(path, arch="kquants")
    # name -> (rows, cols, type)
    specs = [
        ("t.q5_0", 3, 96, Q.Q5_0),
        ("t.q5_1", 3, 96, Q.Q5_1),
        ("t.q4_k", 3, 512, Q.Q4_K),
        ("t.q5_k", 3, 512, Q.Q5_K),
        ("t.q6_k", 3, 512, Q.Q6_K),
        ("t.q2_k", 1, 256, Q.Q2_K),   # not read by ParaTool: tests the error
    ]
    for name, rows, cols, qt in specs:
        block, _ = gguf.GGML_QUANT_SIZES[qt]
        if qt in (Q.Q5_0, Q.Q5_1):
            data = quantize(rng.standard_normal((rows, cols)).astype(np.float32), qt)
        else:
            data = random_blocks(rng, qt, rows * cols // block).reshape(rows, -1)
        w.add_tensor(name, data, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    r = gguf.GGUFReader(path)
    tensors = {}
    for t in r.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
        tensors[t.name] = {
            "dims": [int(x) for x in t.shape],
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "offset": int(t.data_offset),
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "values": [float(x) for x in values],
        }
    out = {"gguf_py_version": version("gguf"), "numpy_version": np.__version__, "tensors": tensors}
    with open(os.path.join(HERE, "blocks_expected.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and blocks_expected.json")


# MARK: - model

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 256, 512, 2, 4, 2, 64
TRAINING_TEXT = (
    "the quick brown fox jumps over the lazy dog. a tool call names a function and its arguments. "
    "get the weather in paris, then send an email to the team about the meeting on monday. "
    "the model reads the file in place and the kernels multiply the blocks. "
    "what is the capital of france? the capital of france is paris. "
)


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: every byte as a printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def tiny_vocab(size):
    """A byte-level BPE vocabulary: 2 control tokens, the 256 byte symbols, then merges learnt
    greedily on TRAINING_TEXT (GPT-2 word splitting on spaces) up to `size` tokens."""
    b2u = bytes_to_unicode()
    tokens = ["<|endoftext|>", "<|pad|>"] + [b2u[b] for b in range(256)]
    words = {}
    for i, word in enumerate(TRAINING_TEXT.split(" ")):
        spelled = ("" if i == 0 else b2u[ord(" ")]) + "".join(b2u[b] for b in word.encode())
        words[tuple(spelled)] = words.get(tuple(spelled), 0) + 1
    merges = []
    while len(tokens) < size:
        pairs = {}
        for word, count in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + count
        if not pairs:
            break
        (a, b) = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(f"{a} {b}")
        tokens.append(a + b)
        new_words = {}
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + count
        words = new_words
    while len(tokens) < size:  # pad with unused control tokens if the text ran out of pairs
        tokens.append(f"<|unused{len(tokens)}|>")
    types = [3 if t.startswith("<|") else 1 for t in tokens]
    return tokens, merges, types


def write_f32_model(path, vocab_size=384):
    rng = np.random.default_rng(39)
    tokens, merges, types = tiny_vocab(vocab_size)
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("tiny-llama-kquants")
    w.add_context_length(512)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")  # a pre-tokenizer both llama.cpp and ParaTool name
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(vocab_size, HIDDEN, 1.0))
    for l in range(LAYERS):
        s = 1.0 / np.sqrt(HIDDEN)
        w.add_tensor(f"blk.{l}.attn_norm.weight", norm(HIDDEN))
        w.add_tensor(f"blk.{l}.attn_q.weight", mat(HEADS * HEAD_DIM, HIDDEN, s))
        w.add_tensor(f"blk.{l}.attn_k.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN, s))
        w.add_tensor(f"blk.{l}.attn_v.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN, s))
        w.add_tensor(f"blk.{l}.attn_output.weight", mat(HIDDEN, HEADS * HEAD_DIM, s))
        w.add_tensor(f"blk.{l}.ffn_norm.weight", norm(HIDDEN))
        w.add_tensor(f"blk.{l}.ffn_gate.weight", mat(FFN, HIDDEN, s))
        w.add_tensor(f"blk.{l}.ffn_up.weight", mat(FFN, HIDDEN, s))
        w.add_tensor(f"blk.{l}.ffn_down.weight", mat(HIDDEN, FFN, 1.0 / np.sqrt(FFN)))
    w.add_tensor("output_norm.weight", norm(HIDDEN))
    # An output head of its own: tied to the embedding, a random model's residual stream is
    # mostly the input token's embedding and every position predicts its own token.
    w.add_tensor("output.weight", mat(vocab_size, HIDDEN, 0.6))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize_model(src, dst, ftype):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    assert rc == 0, f"llama_model_quantize returned {rc}"


PROMPTS = [
    "the capital of france is",
    "get the weather in paris, then send an email",
    "a tool call names",
]


def llama_cpp_outputs(path):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=256, logits_all=True, verbose=False, n_threads=2, seed=0)
    results = []
    for p in PROMPTS:
        ids = llm.tokenize(p.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[:len(ids)], dtype=np.float32)
        last = logits[-1]
        top = np.argsort(-last)[:10].tolist()
        llm.reset()
        gen = []
        for t in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
            if len(gen) >= 16:
                break
            gen.append(int(t))
        # llama.cpp's margins along its own greedy path (teacher-forced on the generated ids).
        llm.reset()
        llm.eval(ids + gen)
        path = np.array(llm.scores[len(ids) - 1:len(ids) + len(gen) - 1], dtype=np.float32)
        path_sorted = np.sort(path, axis=1)
        ordered = np.sort(logits, axis=1)
        results.append({
            "prompt": p, "ids": ids,
            "last_logits": [float(x) for x in last],
            "last_logits_top10_ids": top,
            "logits_rms_per_position": [float(np.sqrt((r.astype(np.float64) ** 2).mean())) for r in logits],
            "argmax_per_position": [int(np.argmax(r)) for r in logits],
            "margin_per_position": [float(x) for x in ordered[:, -1] - ordered[:, -2]],
            "greedy_16": gen,
            "greedy_margins": [float(x) for x in path_sorted[:, -1] - path_sorted[:, -2]],
            "greedy_text": llm.detokenize(gen).decode("utf-8", "replace"),
            # special=True: control tokens (<|endoftext|>, <|pad|>) rendered as their text, as ParaTool does
            "greedy_text_prefixes": [llm.detokenize(gen[:i + 1], special=True).decode("utf-8", "replace") for i in range(len(gen))],
        })
    return results


def gguf_reading(path):
    r = gguf.GGUFReader(path)
    types = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    samples = {}
    for t in r.tensors:
        if t.name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.1.attn_v.weight"):
            values = dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
            samples[t.name] = {"type": t.tensor_type.name, "dims": [int(x) for x in t.shape],
                               "first64": [float(x) for x in values[:64]],
                               "last64": [float(x) for x in values[-64:]]}
    return {"tensor_types": {t.name: t.tensor_type.name for t in r.tensors}, "type_counts": types, "samples": samples}


def model():
    import llama_cpp
    out = {"gguf_py_version": version("gguf"), "llama_cpp_python_version": version("llama-cpp-python"),
           "numpy_version": np.__version__,
           "oracle": "llama.cpp via llama-cpp-python (quantised weights, 8-bit K-block activations)",
           "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "tiny-llama-F32.gguf")
        write_f32_model(f32)
        for label, ftype in [("Q4_K_M", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M), ("Q5_K_M", llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M)]:
            dst = os.path.join(HERE, f"tiny-llama-{label}.gguf")
            quantize_model(f32, dst, ftype)
            entry = {"sha256": hashlib.sha256(open(dst, "rb").read()).hexdigest(), "bytes": os.path.getsize(dst)}
            entry.update(gguf_reading(dst))
            entry["prompts"] = llama_cpp_outputs(dst)
            out["files"][f"tiny-llama-{label}.gguf"] = entry
            print(f"wrote {dst} ({entry['bytes']} bytes): {entry['type_counts']}")
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    what = sys.argv[1:] or ["blocks", "model"]
    if "blocks" in what:
        blocks()
    if "model" in what:
        model()
