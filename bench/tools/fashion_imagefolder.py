"""Write a Fashion-MNIST ImageFolder slice as PNG files (what issue 21's whole-command benchmark trains on):
OUT/train/<class>/<i>.png for the first N training images and OUT/val/<class>/<i>.png for the first M test
images of Debian's dataset-fashion-mnist. Benchmark tooling only (Debian's /usr/bin/python3, PIL, numpy).

    /usr/bin/python3 bench/tools/fashion_imagefolder.py OUT [N=3000] [M=1000] [DATA=/usr/share/datasets/fashion-mnist]
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

CLASSES = ['T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle_boot']


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    data = sys.argv[4] if len(sys.argv) > 4 else '/usr/share/datasets/fashion-mnist'
    for split, prefix, count in (('train', 'train', n), ('val', 't10k', m)):
        x = read_idx(os.path.join(data, f'{prefix}-images-idx3-ubyte.gz'))[:count]
        y = read_idx(os.path.join(data, f'{prefix}-labels-idx1-ubyte.gz'))[:count]
        for c in CLASSES:
            os.makedirs(os.path.join(out, split, c), exist_ok=True)
        for i in range(count):
            Image.fromarray(x[i], mode='L').save(os.path.join(out, split, CLASSES[y[i]], f'{i:05d}.png'))
    with open(os.path.join(out, 'DONE'), 'w') as f:
        f.write(f'{n} {m}\n')


if __name__ == '__main__':
    main()
