#!/usr/bin/env python3
"""Writes the small real seed files the parser fuzzers mutate (test/fuzz-seeds/, committed, a few KB each).

usage: make_fuzz_seeds.py OUT_DIR [--only-idx]
Needs Debian's python3-torch, python3-numpy and python3-pil. Never part of the product.
"""
import io, os, pickle, sys
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from make_checkpoints import formats, save_safetensors  # noqa: E402

out = sys.argv[1]
only_idx = sys.argv[2:] == ["--only-idx"]
os.makedirs(out, exist_ok=True)
if not only_idx:
    tmp = os.path.join(out, "_formats")
    os.makedirs(tmp, exist_ok=True)
    formats(tmp)  # zip.pth, legacy.pth, expected.safetensors: strided, offset, shared, fp16, bf16, f64 storages
    for src, dst in [("zip.pth", "torch-zip.pth"), ("legacy.pth", "torch-legacy.pth"), ("expected.safetensors", "model.safetensors")]:
        os.replace(os.path.join(tmp, src), os.path.join(out, dst))
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)

    rng = np.random.default_rng(0)
    sd = OrderedDict()
    sd["conv1_weights"] = rng.standard_normal((4, 3, 3, 3)).astype("<f4")
    sd["bn_conv1_scale"] = rng.standard_normal(4).astype("<f4")
    sd["fc_0.w_0"] = rng.standard_normal((4, 5)).astype("<f2")
    sd["fc_0.b_0"] = rng.standard_normal(5).astype("<f8")
    sd["step"] = np.array(3, dtype="<i8")
    for proto in (2, 4):
        with open(os.path.join(out, f"paddle-p{proto}.pdparams"), "wb") as f:
            pickle.dump(dict(sd), f, protocol=proto)

    np.save(os.path.join(out, "x-f4.npy"), rng.standard_normal((1, 3, 4, 4)).astype("<f4"))
    np.save(os.path.join(out, "x-u1.npy"), rng.integers(0, 255, (2, 3, 3), dtype=np.uint8))

    px = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    im = Image.fromarray(px, "RGB")
    im.save(os.path.join(out, "image.jpg"), quality=90)
    im.save(os.path.join(out, "image.png"))
    im.convert("P").save(os.path.join(out, "image.gif"))
    im.save(os.path.join(out, "image.webp"), quality=80)
    im.save(os.path.join(out, "image.tiff"))
    Image.fromarray(px[:, :, 0], "L").save(os.path.join(out, "gray.png"))

rng = np.random.default_rng(1)
# IDX (MNIST layout), written with struct here, independently of tsimm's writer: plain and gzipped.
import gzip, struct  # noqa: E402


def idx(dtype_code, fmt, dims, values):
    return struct.pack(">BBBB", 0, 0, dtype_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + struct.pack(f">{len(values)}{fmt}", *values)


images = idx(0x08, "B", [3, 4, 4], rng.integers(0, 256, 48).tolist())
with open(os.path.join(out, "images-idx3-ubyte"), "wb") as f:
    f.write(images)
with open(os.path.join(out, "labels-idx1-ubyte"), "wb") as f:
    f.write(idx(0x08, "B", [3], [7, 2, 9]))
with open(os.path.join(out, "float-idx2"), "wb") as f:
    f.write(idx(0x0D, "f", [2, 3], rng.standard_normal(6).tolist()))
with open(os.path.join(out, "images-idx3-ubyte.gz"), "wb") as f:
    f.write(gzip.compress(images, mtime=0))
