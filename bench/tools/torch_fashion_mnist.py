"""PyTorch CPU side of `bench/fashion-mnist.ts`: train timm's resnet18 (plain torch, from torch_train.py) on the
60,000 Fashion-MNIST training images and evaluate it on the 10,000 test images, with the recipe and augmentation
`tsimm train` runs in the same benchmark. Benchmark tooling only (Debian's /usr/bin/python3, python3-torch, PIL).

    /usr/bin/python3 bench/tools/torch_fashion_mnist.py CONFIG_JSON

CONFIG_JSON (one argument, what the driver passes): {"data": DIR, "model": "resnet18", "size": 28, "epochs": N,
"batch": 128, "lr", "momentum", "weight_decay", "label_smoothing", "warmup_epochs", "warmup_lr", "min_lr",
"scale": [a, b], "ratio": [a, b], "hflip", "interpolation", "crop_pct", "mean": [3], "std": [3], "seed",
"threads": 2, "workers": 1, "limit": N|null (both splits), "train_limit": N|null (training split only),
"crop": "pad"|"rrc", "padding": N, "nesterov": bool}  (crop "pad": tsimm train's small-image recipe)

Recipe, as tsimm's trainer + fit: SGD momentum (not Nesterov), weight decay on tensors of rank >= 2 only (timm's
optimizer factory), cross-entropy with label smoothing, BatchNorm in train mode, cosine LR stepped per update with a
linear warmup from warmup_lr (timm's CosineLRScheduler on updates: lr_min + (lr - lr_min)(1 + cos(pi t / T)) / 2),
dropped last partial batch. timm's ResNet init: convs kaiming-normal fan_out/ReLU, BatchNorm 1/0 with each block's
last BatchNorm zeroed (zero_init_last), Linear PyTorch's default. Train transform as timm's
RandomResizedCropAndInterpolation (torchvision's get_params, PIL resize of the box) + horizontal flip, gray
replicated to 3 channels, ToTensor, Normalize; eval: resize the short side to floor(size / crop_pct), centre crop
size. Data in DataLoader worker processes (`workers`, as tsimm's loader workers). Prints one JSON line per epoch
({"epoch", "train_loss", "seconds", "cpu_seconds", "images_per_second", "eval_top1", "eval_top5", "eval_loss", "eval_seconds",
"lr"}) and a final {"summary": ...} line.
"""
import gzip
import json
import math
import os
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import MODELS  # noqa: E402  (timm-keyed plain-torch ResNet)

PIL_FILTERS = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR, 'nearest': Image.NEAREST, 'lanczos': Image.LANCZOS}


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data, split, limit):
    prefix = 'train' if split == 'train' else 't10k'
    x = read_idx(os.path.join(data, f'{prefix}-images-idx3-ubyte.gz'))
    y = read_idx(os.path.join(data, f'{prefix}-labels-idx1-ubyte.gz'))
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y.astype(np.int64)


def rrc_params(rng, width, height, scale, ratio):
    # torchvision RandomResizedCrop.get_params (timm's RandomResizedCropAndInterpolation).
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = rng.randint(0, height - h)
            j = rng.randint(0, width - w)
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class FashionMnist(torch.utils.data.Dataset):
    def __init__(self, x, y, cfg, train):
        self.x, self.y, self.cfg, self.train = x, y, cfg, train
        self.size = cfg['size']
        self.filter = PIL_FILTERS[cfg['interpolation']]
        self.mean = torch.tensor(cfg['mean'], dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(cfg['std'], dtype=torch.float32).view(3, 1, 1)
        self.epoch = 0

    def __len__(self):
        return len(self.y)

    def __getitem__(self, k):
        img = Image.fromarray(self.x[k], mode='L')
        s = self.size
        if self.train and self.cfg.get('crop') == 'pad':
            # tsimm train's small-image recipe: resize the whole image, pad, random crop (torchvision RandomCrop).
            rng = random.Random((self.cfg['seed'] * 1_000_003 + self.epoch * 100_003 + k) & 0xFFFFFFFF)
            img = img.resize((s, s), self.filter)
            p = self.cfg.get('padding', 0)
            if p:
                canvas = Image.new('L', (s + 2 * p, s + 2 * p))
                canvas.paste(img, (p, p))
                i, j = rng.randint(0, 2 * p), rng.randint(0, 2 * p)
                img = canvas.crop((j, i, j + s, i + s))
            if rng.random() < self.cfg['hflip']:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        elif self.train:
            rng = random.Random((self.cfg['seed'] * 1_000_003 + self.epoch * 100_003 + k) & 0xFFFFFFFF)
            i, j, h, w = rrc_params(rng, img.width, img.height, self.cfg['scale'], self.cfg['ratio'])
            img = img.resize((s, s), self.filter, box=(j, i, j + w, i + h))
            if rng.random() < self.cfg['hflip']:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            short = math.floor(s / self.cfg['crop_pct'])
            w, h = img.size
            nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
            img = img.resize((nw, nh), self.filter)
            left, top = int(round((nw - s) / 2.0)), int(round((nh - s) / 2.0))
            img = img.crop((left, top, left + s, top + s))
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0).expand(3, s, s)
        return (t - self.mean) / self.std, int(self.y[k])


def timm_resnet_init(model):
    # timm ResNet.init_weights: kaiming_normal fan_out/ReLU convs, BN 1/0, zero_init_last; Linear keeps
    # PyTorch's default (nn.Linear.reset_parameters).
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        last = getattr(m, 'bn3', None) if hasattr(m, 'conv3') else getattr(m, 'bn2', None) if hasattr(m, 'downsample') else None
        if isinstance(last, nn.BatchNorm2d):
            nn.init.zeros_(last.weight)


def lr_at(cfg, t, total, warmup):
    if t < warmup:
        return cfg['warmup_lr'] + t * (cfg['lr'] - cfg['warmup_lr']) / warmup
    if t >= total:
        return cfg['min_lr']
    return cfg['min_lr'] + 0.5 * (cfg['lr'] - cfg['min_lr']) * (1 + math.cos(math.pi * t / total))


def cpu_now():
    # This process and its reaped children (DataLoader workers exit, and are joined, at the end of each pass).
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def evaluate(model, loader):
    model.eval()
    n = c1 = c5 = 0
    loss = 0.0
    t0 = time.perf_counter()
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction='sum').item()
            top = logits.topk(5, 1).indices
            c1 += (top[:, 0] == y).sum().item()
            c5 += (top == y[:, None]).any(1).sum().item()
            n += len(y)
    model.train()
    return {'eval_top1': 100 * c1 / n, 'eval_top5': 100 * c5 / n, 'eval_loss': loss / n, 'eval_seconds': time.perf_counter() - t0, 'eval_images': n}


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg.get('threads', 2))
    torch.manual_seed(cfg['seed'])
    build, _head = MODELS[cfg['model']]
    model = build()
    model.fc = nn.Linear(model.fc.in_features, 10)
    timm_resnet_init(model)
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.SGD([{'params': decay, 'weight_decay': cfg['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}],
                          lr=cfg['lr'], momentum=cfg['momentum'], nesterov=cfg.get('nesterov', False))
    xtr, ytr = load_split(cfg['data'], 'train', cfg.get('train_limit') or cfg.get('limit'))
    xte, yte = load_split(cfg['data'], 'test', cfg.get('limit'))
    train_ds = FashionMnist(xtr, ytr, cfg, True)
    test_ds = FashionMnist(xte, yte, cfg, False)
    workers = cfg.get('workers', 1)
    g = torch.Generator()
    g.manual_seed(cfg['seed'])
    common = {'batch_size': cfg['batch'], 'num_workers': workers, 'persistent_workers': False}
    test_loader = torch.utils.data.DataLoader(test_ds, shuffle=False, **common)
    per_epoch = len(train_ds) // cfg['batch']
    total = cfg['epochs'] * per_epoch
    warmup = round(cfg['warmup_epochs'] * per_epoch)
    step = 0
    records = []
    for epoch in range(cfg['epochs']):
        train_ds.epoch = epoch
        loader = torch.utils.data.DataLoader(train_ds, shuffle=True, drop_last=True, generator=g, **common)
        t0, c0 = time.perf_counter(), cpu_now()
        loss_sum, images = 0.0, 0
        for x, y in loader:
            lr = lr_at(cfg, step, total, warmup)
            for group in opt.param_groups:
                group['lr'] = lr
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y, label_smoothing=cfg['label_smoothing'])
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item()
            images += len(y)
        seconds, cpu = time.perf_counter() - t0, cpu_now() - c0
        rec = {'epoch': epoch, 'train_loss': loss_sum / per_epoch, 'lr': lr, 'seconds': seconds, 'cpu_seconds': cpu, 'images_per_second': images / seconds, 'loadavg': list(os.getloadavg())}
        rec.update(evaluate(model, test_loader))
        records.append(rec)
        print(json.dumps(rec), flush=True)
    print(json.dumps({'summary': {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'params': sum(p.numel() for p in model.parameters()), 'epochs': records}}), flush=True)


if __name__ == '__main__':
    main()
