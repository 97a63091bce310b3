# Makes bf16_rounding.json: float32 values and their BF16 encoding by gguf-py's reference
# quantiser (gguf.quants.quantize(..., GGMLQuantizationType.BF16), "same as
# ggml_compute_fp32_to_bf16": NaN forced quiet, then round to nearest even).
# Run: python3 make_bf16.py   (gguf 0.19.0, numpy 2.x)
import json
import numpy as np
import gguf
from gguf import quants

rng = np.random.default_rng(20261207)
special = np.array([0.0, -0.0, 1.0, -1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 1.0 + 2.0**-8 + 2.0**-20,
                    np.inf, -np.inf, np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-40, -3e-42,
                    65504.0, 3.140625, 0.1], dtype=np.float32)
values = np.concatenate([special, rng.standard_normal(48).astype(np.float32) * 0.05,
                         rng.standard_normal(16).astype(np.float32) * 300]).astype(np.float32)
bits = values.view(np.uint32)
nan_bits = np.array([0x7fc00000, 0x7f800001, 0xffa00001], dtype=np.uint32)  # quiet, signalling, negative signalling
all_bits = np.concatenate([bits, nan_bits])
encoded = quants.quantize(all_bits.view(np.float32), gguf.GGMLQuantizationType.BF16).view(np.uint16)
json.dump({"generator": f"gguf-py {gguf.__version__ if hasattr(gguf, '__version__') else '0.19.0'} quants.quantize BF16",
           "float32_bits": [int(b) for b in all_bits], "bf16": [int(h) for h in encoded]},
          open("bf16_rounding.json", "w"), indent=0)
print(len(all_bits), "values")
