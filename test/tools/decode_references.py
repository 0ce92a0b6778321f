#!/usr/bin/env python3
"""Test-only: writes images in unusual modes, and how the references decode them.

usage: decode_references.py OUT_DIR
For each NAME it writes OUT_DIR/NAME.<ext> and OUT_DIR/NAME.pil.npy (PIL's Image.open(f).convert('RGB'), timm's
loader) and OUT_DIR/NAME.cv2.npy (cv2.imread(f, cv2.IMREAD_COLOR) as RGB, PaddleClas' decode), uint8 HxWx3.
Needs Debian's python3-pil, python3-opencv and python3-numpy; never part of the product.
"""
import io, json, os, struct, sys

import cv2
import numpy as np
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(14)
H, W = 13, 17
made = []


def save(name, im, ext, **kw):
    path = os.path.join(out, f"{name}.{ext}")
    im.save(path, **kw)
    made.append((name, path))


def gradient16():
    y, x = np.mgrid[0:H, 0:W]
    return ((x * 3853 + y * 2111 + rng.integers(0, 400, (H, W))) % 65536).astype(np.uint16)


rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
cmyk = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
# CMYK JPEG as PIL writes it (Adobe marker, inverted), at two qualities.
save("cmyk", Image.fromarray(cmyk, "CMYK"), "jpg", quality=95)
# 16-bit RGB and gray PNGs (values across the whole range).
g16 = np.stack([gradient16(), gradient16()[::-1], gradient16()[:, ::-1]], -1)
with open(os.path.join(out, "rgb16.png"), "wb") as f:
    ok, buf = cv2.imencode(".png", g16[:, :, ::-1].copy())
    f.write(buf.tobytes())
made.append(("rgb16", os.path.join(out, "rgb16.png")))
gray16 = gradient16()
gray16[0, :8] = [0, 1, 254, 255, 256, 257, 4000, 65535]
with open(os.path.join(out, "gray16.png"), "wb") as f:
    f.write(cv2.imencode(".png", gray16)[1].tobytes())
made.append(("gray16", os.path.join(out, "gray16.png")))
# Palette with transparency (tRNS), as PNG and GIF.
p = Image.fromarray(rgb, "RGB").quantize(16)
p.info["transparency"] = 3
save("palette-trns", p, "png", transparency=3)
save("palette-trns-gif", p, "gif", transparency=3)
# LA, RGBA (alpha dropped, never composited), 1-bit, 32-bit int and float TIFF.
la = np.stack([rgb[:, :, 0], rgb[:, :, 1]], -1)
save("la", Image.fromarray(la, "LA"), "png")
save("rgba", Image.fromarray(rng.integers(0, 256, (H, W, 4), dtype=np.uint8), "RGBA"), "png")
save("bilevel", Image.fromarray(rgb[:, :, 0] > 127).convert("1"), "png")
save("bilevel-tiff", Image.fromarray(rgb[:, :, 1] > 127).convert("1"), "tiff")
i32 = (rng.integers(-300, 600, (H, W))).astype(np.int32)
save("int32", Image.fromarray(i32, "I"), "tiff")
f32 = (rng.random((H, W)) * 400 - 50).astype(np.float32)
f32[0, :6] = [-1.0, 0.4, 0.5, 0.6, 254.5, 255.7]
save("float32", Image.fromarray(f32, "F"), "tiff")

index = {}
for name, path in made:
    pil = np.asarray(Image.open(path).convert("RGB"))
    np.save(os.path.join(out, f"{name}.pil.npy"), pil)
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is not None:
        np.save(os.path.join(out, f"{name}.cv2.npy"), im[:, :, ::-1].copy())
    index[name] = {"file": os.path.basename(path), "pilMode": Image.open(path).mode, "cv2": im is not None}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f, indent=1)
