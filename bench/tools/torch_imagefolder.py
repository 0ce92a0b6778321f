"""PyTorch CPU side of `bench/small-images.ts`: the plain PyTorch recipe a user would write for an ImageFolder of
small images (PNG), timed as one command: load + train + eval. timm's resnet18 in plain torch (torch_train.py;
timm cannot be installed here), timm's init. Benchmark tooling only (Debian's /usr/bin/python3, python3-torch, PIL).

    /usr/bin/python3 bench/tools/torch_imagefolder.py CONFIG_JSON

CONFIG_JSON: {"train": DIR, "val": DIR, "model": "resnet18", "size": 32, "epochs": 5, "batch": 64, "lr": 0.05,
"momentum": 0.9, "nesterov": true, "weight_decay": 2e-5, "label_smoothing": 0.1, "interpolation": "bilinear",
"crop_pct": 1.0, "mean": [3], "std": [3], "aug": "flip"|"pad", "pad": 4, "hflip": 0.5, "seed": 42,
"threads": 2, "workers": 1}

Recipe: SGD (Nesterov) with weight decay on rank >= 2 tensors, cross-entropy with label smoothing, cosine LR per
update, last partial batch dropped. Train transform: PIL resize to size x size, then with aug "pad" a random
size x size crop of the image zero-padded by `pad` (torchvision's RandomCrop(padding=pad)), then horizontal flip;
eval: resize the short side to floor(size / crop_pct), centre crop. Data in DataLoader worker processes. Prints
one JSON line per epoch and a final {"summary": ...} line with the process's wall and CPU seconds.
"""
import json
import math
import os
import random
import resource
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import MODELS  # noqa: E402
from torch_fashion_mnist import timm_resnet_init, evaluate, cpu_now  # noqa: E402

PIL_FILTERS = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR}


def image_folder(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    samples = []
    for t, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            samples.append((os.path.join(root, c, f), t))
    return classes, samples


class Folder(torch.utils.data.Dataset):
    def __init__(self, samples, cfg, train):
        self.samples, self.cfg, self.train = samples, cfg, train
        self.filter = PIL_FILTERS[cfg['interpolation']]
        self.mean = torch.tensor(cfg['mean'], dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(cfg['std'], dtype=torch.float32).view(3, 1, 1)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, k):
        path, target = self.samples[k]
        img = Image.open(path).convert('RGB')
        s = self.cfg['size']
        if self.train:
            img = img.resize((s, s), self.filter)
            if self.cfg['aug'] == 'pad':
                p = self.cfg['pad']
                canvas = Image.new('RGB', (s + 2 * p, s + 2 * p))
                canvas.paste(img, (p, p))
                i, j = random.randint(0, 2 * p), random.randint(0, 2 * p)
                img = canvas.crop((j, i, j + s, i + s))
            if random.random() < self.cfg['hflip']:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            short = math.floor(s / self.cfg['crop_pct'])
            w, h = img.size
            nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
            img = img.resize((nw, nh), self.filter)
            left, top = int(round((nw - s) / 2.0)), int(round((nh - s) / 2.0))
            img = img.crop((left, top, left + s, top + s))
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (t - self.mean) / self.std, target


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg.get('threads', 2))
    torch.manual_seed(cfg['seed'])
    random.seed(cfg['seed'])
    classes, train_samples = image_folder(cfg['train'])
    _, val_samples = image_folder(cfg['val'])
    build, _ = MODELS[cfg['model']]
    model = build()
    model.fc = nn.Linear(model.fc.in_features, len(classes))
    timm_resnet_init(model)
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.SGD([{'params': decay, 'weight_decay': cfg['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}],
                          lr=cfg['lr'], momentum=cfg['momentum'], nesterov=cfg['nesterov'])
    train_ds, val_ds = Folder(train_samples, cfg, True), Folder(val_samples, cfg, False)
    workers = cfg.get('workers', 1)
    common = {'batch_size': cfg['batch'], 'num_workers': workers, 'persistent_workers': workers > 0}
    g = torch.Generator()
    g.manual_seed(cfg['seed'])
    train_loader = torch.utils.data.DataLoader(train_ds, shuffle=True, drop_last=True, generator=g, **common)
    val_loader = torch.utils.data.DataLoader(val_ds, shuffle=False, **common)
    total = cfg['epochs'] * len(train_loader)
    step = 0
    for epoch in range(cfg['epochs']):
        t0, c0 = time.perf_counter(), cpu_now()
        loss_sum, images = 0.0, 0
        for x, y in train_loader:
            lr = 0.5 * cfg['lr'] * (1 + math.cos(math.pi * step / total))
            for group in opt.param_groups:
                group['lr'] = lr
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y, label_smoothing=cfg['label_smoothing'])
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item()
            images += len(y)
        seconds = time.perf_counter() - t0
        rec = {'epoch': epoch, 'train_loss': loss_sum / len(train_loader), 'lr': lr, 'seconds': seconds, 'cpu_seconds': cpu_now() - c0, 'images_per_second': images / seconds}
        rec.update(evaluate(model, val_loader))
        print(json.dumps(rec), flush=True)
    print(json.dumps({'summary': {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'wall_seconds': time.perf_counter() - T_START, 'cpu_seconds': cpu_now()}}), flush=True)


if __name__ == '__main__':
    main()
