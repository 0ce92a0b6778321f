"""PIL side of `bench/preprocess.ts`: times decode, resize and crop of one image as timm's eval transform does
(Image.open(f).convert('RGB'), resize of the short side to floor(size / crop_pct) with BICUBIC, centre crop),
in lockstep with the TypeScript side. Benchmark tooling only (Debian's /usr/bin/python3, python3-pil).

    /usr/bin/python3 bench/tools/pil_preprocess.py

Reads lines `PATH SIZE CROP_PCT REPS` on stdin; for each prints one JSON line of per-stage times in ms
(lists of REPS values): decode, resize (of the already decoded image), total (decode + resize + crop).
"""
import json
import math
import sys
import time

import PIL
from PIL import Image

print(json.dumps({'ready': True, 'pil': PIL.__version__}), flush=True)
for line in sys.stdin:
    path, size, crop_pct, reps = line.split()
    size, crop_pct, reps = int(size), float(crop_pct), int(reps)
    short = math.floor(size / crop_pct)

    def target(w, h):
        return (short, int(short * h / w)) if w <= h else (int(short * w / h), short)

    dec, res, tot = [], [], []
    img = None
    for _ in range(reps):
        t0 = time.perf_counter()
        img = Image.open(path).convert('RGB')
        dec.append((time.perf_counter() - t0) * 1e3)
    nw, nh = target(*img.size)
    for _ in range(reps):
        t0 = time.perf_counter()
        img.resize((nw, nh), Image.BICUBIC)
        res.append((time.perf_counter() - t0) * 1e3)
    for _ in range(reps):
        t0 = time.perf_counter()
        im = Image.open(path).convert('RGB')
        r = im.resize((nw, nh), Image.BICUBIC)
        left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
        r.crop((left, top, left + size, top + size)).tobytes()
        tot.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({'decode': dec, 'resize': res, 'total': tot, 'size': [img.width, img.height], 'resized': [nw, nh]}), flush=True)
