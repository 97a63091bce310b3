#!/usr/bin/env python3
"""How alike trained tools' adapters are, as moves away from the adapter they all started from.

Reads a store's start adapter (`_global`) and the stage-1 adapters (float32 PEFT safetensors,
read here with numpy alone, independent of the project's reader) of COUNT tools drawn with SEED,
and prints the norm of the start and of each tool's move (its parameters minus the start's),
the cosines between different tools' moves, the share of a move's energy along the mean move,
and the share of the moves' energy in the B matrices.

Usage: Benchmarks/adapter_deltas.py STORE [COUNT=40] [SEED=0]
"""
import json, os, random, struct, sys
import numpy as np


def tensors(directory):
    with open(os.path.join(directory, "adapter_model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            assert info["dtype"] == "F32", f"{directory}: {name} is {info['dtype']}; this reads float32 stores"
            a, b = info["data_offsets"]
            f.seek(8 + n + a)
            out[name] = np.frombuffer(f.read(b - a), dtype=np.float32)
    return out


def stage_one(store, tool):
    for version in sorted(os.listdir(os.path.join(store, tool))):
        d = os.path.join(store, tool, version)
        with open(os.path.join(d, "manifest.json")) as f:
            if json.load(f).get("stage") == "pretrain":
                return d
    return None


def main():
    store = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    start = tensors(os.path.join(store, "_global", sorted(os.listdir(os.path.join(store, "_global")))[-1]))
    names = sorted(start)
    g = np.concatenate([start[k] for k in names])
    tools = sorted(t for t in os.listdir(store) if not t.startswith(("_", ".")) and stage_one(store, t))
    chosen = random.Random(seed).sample(tools, min(count, len(tools)))
    moves = np.array([np.concatenate([tensors(stage_one(store, t))[k] for k in names]) - g for t in chosen])
    norms = np.linalg.norm(moves, axis=1)
    unit = moves / norms[:, None]
    cos = (unit @ unit.T)[~np.eye(len(chosen), dtype=bool)]
    mean = moves.mean(0)
    along = ((moves @ (mean / np.linalg.norm(mean))) ** 2 / norms ** 2).mean()
    in_b = np.concatenate([np.full(start[k].size, "lora_B" in k) for k in names])
    print(f"{len(chosen)} of {len(tools)} stage-1 adapters in {store} (seed {seed}), {g.size} parameters each")
    print(f"start norm {np.linalg.norm(g):.2f}; move norms mean {norms.mean():.3f}, min {norms.min():.3f}, max {norms.max():.3f}")
    print(f"cosine between two tools' moves: mean {cos.mean():.3f}, sd {cos.std():.3f}, min {cos.min():.3f}, max {cos.max():.3f}")
    print(f"share of a move's energy along the mean move: {along:.3f}")
    print(f"share of the moves' energy in B: {(moves[:, in_b] ** 2).sum() / (moves ** 2).sum():.3f}")


if __name__ == "__main__":
    main()
