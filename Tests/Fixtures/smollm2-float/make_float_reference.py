#!/usr/bin/env python3
"""Float64 reference for SmolLM2-135M-Instruct (GGUF Q4_1), independent of ParaTool's code.

Weights are dequantised by llama.cpp's own Python package (gguf-py, `gguf.quants.dequantize`);
the forward pass is written here in plain numpy, in float64, following Hugging Face's
LlamaForCausalLM (RMSNorm, rotate_half RoPE on the un-permuted Q/K rows, GQA, SiLU MLP, tied head).
It exists because llama.cpp's own output (Tests/Fixtures/smollm2-llama-cpp) comes from int8-quantised
activations, which moves the logits RMS by up to ~10% at some positions: a float re-implementation
is checked tightly against this file and loosely against llama.cpp.

Usage: python3 make_float_reference.py GGUF_PATH ../smollm2-llama-cpp/expected.json > expected.json
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main():
    gguf_path, prompts_path = sys.argv[1], sys.argv[2]
    reader = GGUFReader(gguf_path)
    w = {t.name: dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(x) for x in reversed(t.shape)])
         for t in reader.tensors}
    field = lambda k: reader.fields[k].contents()
    H = field("llama.embedding_length"); nh = field("llama.attention.head_count")
    nkv = field("llama.attention.head_count_kv"); L = field("llama.block_count")
    eps = field("llama.attention.layer_norm_rms_epsilon"); theta = field("llama.rope.freq_base")
    hd = H // nh

    def unpermute(m, n):  # inverse of convert_hf_to_gguf's permute for Q/K rows
        return m.reshape(n, hd // 2, 2, -1).swapaxes(1, 2).reshape(m.shape)

    for l in range(L):
        w[f"blk.{l}.attn_q.weight"] = unpermute(w[f"blk.{l}.attn_q.weight"], nh)
        w[f"blk.{l}.attn_k.weight"] = unpermute(w[f"blk.{l}.attn_k.weight"], nkv)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def forward(ids):
        S = len(ids)
        x = w["token_embd.weight"][ids]
        inv = 1.0 / (theta ** (np.arange(0, hd, 2) / hd))
        ang = np.arange(S)[:, None] * inv[None, :]
        cos = np.cos(np.concatenate([ang, ang], -1))[:, None, :]
        sin = np.sin(np.concatenate([ang, ang], -1))[:, None, :]

        def rope(q):
            h = hd // 2
            return q * cos + np.concatenate([-q[..., h:], q[..., :h]], -1) * sin

        mask = np.triu(np.full((S, S), -np.inf), 1)
        for l in range(L):
            b = f"blk.{l}."
            xn = rms(x, w[b + "attn_norm.weight"])
            q = rope((xn @ w[b + "attn_q.weight"].T).reshape(S, nh, hd))
            k = rope((xn @ w[b + "attn_k.weight"].T).reshape(S, nkv, hd))
            v = (xn @ w[b + "attn_v.weight"].T).reshape(S, nkv, hd)
            out = np.zeros((S, nh, hd))
            for h in range(nh):
                g = h // (nh // nkv)
                s = q[:, h] @ k[:, g].T / np.sqrt(hd) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                out[:, h] = (s / s.sum(-1, keepdims=True)) @ v[:, g]
            x = x + out.reshape(S, -1) @ w[b + "attn_output.weight"].T
            xn = rms(x, w[b + "ffn_norm.weight"])
            gate = xn @ w[b + "ffn_gate.weight"].T
            x = x + ((gate / (1 + np.exp(-gate))) * (xn @ w[b + "ffn_up.weight"].T)) @ w[b + "ffn_down.weight"].T
        return rms(x, w["output_norm.weight"]) @ w["token_embd.weight"].T

    prompts = json.load(open(prompts_path))["prompts"]
    out = []
    for p in prompts:
        ids = list(p["ids"])
        logits = forward(ids)
        last = logits[-1]
        top = np.argsort(-last)[:20]
        greedy, seq, margins = [], list(ids), []
        for _ in range(12):
            lg = forward(seq)[-1]
            order = np.argsort(-lg)
            greedy.append(int(order[0])); margins.append(float(lg[order[0]] - lg[order[1]]))
            seq.append(int(order[0]))
        out.append({"ids": ids,
                    "last_logits_top20_ids": top.tolist(),
                    "last_logits_top20_values": [float(last[i]) for i in top],
                    "logits_rms_per_position": [float(np.sqrt((r ** 2).mean())) for r in logits],
                    "greedy_12": greedy, "greedy_12_margins": margins})
    json.dump({"made_by": "make_float_reference.py (numpy float64, gguf-py dequantize)",
               "gguf_sha256": json.load(open(prompts_path))["gguf_sha256"],
               "prompts": out}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
