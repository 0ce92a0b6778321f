"""PyTorch CPU side of `bench/train.ts`: time training steps of a timm architecture, written in plain torch
(timm cannot be installed here), with the recipe tsimm's trainer runs. Benchmark tooling only.

    /usr/bin/python3 bench/tools/torch_train.py MODEL SIZE BATCH full|head WARMUP STEPS [THREADS] [--lockstep]
    /usr/bin/python3 bench/tools/torch_train.py --params MODEL      # parameter count (checked against tsimm)
    /usr/bin/python3 bench/tools/torch_train.py --bare             # peak RSS of the interpreter with torch loaded

Recipe (as tsimm's `model.trainer({ optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4,
labelSmoothing: 0.1, batchNorm: 'train' })`): SGD lr 0.01, momentum 0.9, weight decay 1e-4 on tensors of rank
>= 2 only (timm's optimizer factory), cross-entropy with label smoothing 0.1, BatchNorm in train mode. `head`
freezes everything but the classifier as timm's `freeze()` does: requires_grad False and eval-mode (running
statistics) BatchNorm in the frozen modules. Weights initialised as tsimm's `initWeights`. No dropout or drop-path (tsimm's graph has none). A step is
zero_grad + forward + loss + backward + optimizer step; prints one JSON line. With `--lockstep` (how
bench/train.ts runs it, taking turns with tsimm's process step by step): prints {"ready": ...} after setup,
then runs one step per `step` line on stdin and prints its time; any other line prints the summary and exits.
"""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- ResNet (timm resnet.py: BasicBlock / Bottleneck, deep stem, avg-down shortcut) ----

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        s = x if self.downsample is None else self.downsample(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return F.relu(x + s)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, downsample):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = downsample

    def forward(self, x):
        s = x if self.downsample is None else self.downsample(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return F.relu(x + s)


class ResNet(nn.Module):
    def __init__(self, block, layers, deep_stem=False, avg_down=False, num_classes=1000):
        super().__init__()
        if deep_stem:  # timm stem_type='deep', stem_width=32: 3x3 32, 32, 64
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, 1, 1, bias=False))
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (n, planes) in enumerate(zip(layers, [64, 128, 256, 512])):
            stride = 1 if i == 0 else 2
            blocks = []
            for b in range(n):
                s = stride if b == 0 else 1
                ds = None
                if b == 0 and (s != 1 or cin != planes * block.expansion):
                    out = planes * block.expansion
                    if avg_down:  # timm downsample_avg
                        pool = nn.AvgPool2d(2, s, ceil_mode=True, count_include_pad=False) if s > 1 else nn.Identity()
                        ds = nn.Sequential(pool, nn.Conv2d(cin, out, 1, bias=False), nn.BatchNorm2d(out))
                    else:
                        ds = nn.Sequential(nn.Conv2d(cin, out, 1, s, bias=False), nn.BatchNorm2d(out))
                blocks.append(block(cin, planes, s, ds))
                cin = planes * block.expansion
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))


# ---- EfficientNet-B0 (timm efficientnet.py / _efficientnet_blocks.py, symmetric padding, BN eps 1e-5) ----

class SqueezeExcite(nn.Module):
    def __init__(self, ch, rd):
        super().__init__()
        self.conv_reduce = nn.Conv2d(ch, rd, 1)
        self.conv_expand = nn.Conv2d(rd, ch, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.conv_expand(F.silu(self.conv_reduce(s))))


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, k, stride, ((stride - 1) + (k - 1)) // 2, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.se = SqueezeExcite(cin, cin // 4)
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.bn2(self.conv_pw(self.se(F.silu(self.bn1(self.conv_dw(x))))))
        return y + x if self.skip else y


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, k, stride, e):
        super().__init__()
        mid = cin * e
        self.conv_pw = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv_dw = nn.Conv2d(mid, mid, k, stride, ((stride - 1) + (k - 1)) // 2, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, cin // 4)
        self.conv_pwl = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.silu(self.bn1(self.conv_pw(x)))
        y = self.se(F.silu(self.bn2(self.conv_dw(y))))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.skip else y


class EfficientNetB0(nn.Module):
    # stage: expand, kernel, stride, out, repeats
    STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        cin, stages = 32, []
        for e, k, s, out, n in self.STAGES:
            blocks = []
            for b in range(n):
                stride = s if b == 0 else 1
                blocks.append(DepthwiseSeparable(cin, out, k, stride) if e == 1 else InvertedResidual(cin, out, k, stride, e))
                cin = out
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x):
        x = F.silu(self.bn1(self.conv_stem(x)))
        x = F.silu(self.bn2(self.conv_head(self.blocks(x))))
        return self.classifier(x.mean((2, 3)))


MODELS = {
    'resnet18': (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), 'fc'),
    'resnet50d': (lambda: ResNet(Bottleneck, [3, 4, 6, 3], deep_stem=True, avg_down=True), 'fc'),
    'efficientnet_b0': (EfficientNetB0, 'classifier'),
}


def init_like_tsimm(model):
    # tsimm's initWeights: He-uniform on fan-in for every conv/linear weight, zero biases, BN scale 1 and shift 0,
    # so activations have the same ranges on both sides (PyTorch's default init shrinks them layer by layer
    # towards denormals under eval-mode BN, which would time something else).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = (6 / (m.weight[0].numel())) ** 0.5
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.zero_()


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main():
    if sys.argv[1] == '--bare':
        print(json.dumps({'maxRssMB': peak_mb()}))
        return
    if sys.argv[1] == '--params':
        m = MODELS[sys.argv[2]][0]()
        print(json.dumps({'params': sum(p.numel() for p in m.parameters())}))
        return
    name, size, batch, mode, warmup, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    lockstep = '--lockstep' in sys.argv
    rest = [a for a in sys.argv[7:] if a != '--lockstep']
    threads = int(rest[0]) if rest else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    build, head = MODELS[name]
    t0 = time.perf_counter()
    model = build()
    init_like_tsimm(model)
    model.train()
    if mode == 'head':  # timm freeze(): no grad, and eval-mode BatchNorm in the frozen modules
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith(head + '.')
        for n, m in model.named_modules():
            if n and not (n == head or n.startswith(head + '.')):
                m.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.SGD([{'params': decay, 'weight_decay': 1e-4}, {'params': no_decay, 'weight_decay': 0.0}], lr=0.01, momentum=0.9)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    y = torch.arange(batch) % 1000
    setup_ms = (time.perf_counter() - t0) * 1000
    times, losses = [], []

    def step():
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        times.append((time.perf_counter() - t) * 1000)
        losses.append(loss.item())

    if lockstep:
        print(json.dumps({'ready': True, 'setupMs': setup_ms}), flush=True)
        while sys.stdin.readline().strip() == 'step':
            step()
            print(json.dumps({'ms': times[-1], 'loss': losses[-1]}), flush=True)
    else:
        for i in range(warmup + steps):
            step()
    print(json.dumps({'setupMs': setup_ms, 'stepMs': times, 'warmup': warmup, 'losses': losses,
                      'params': sum(p.numel() for p in model.parameters()), 'trainable': sum(p.numel() for p in params),
                      'threads': torch.get_num_threads(), 'torch': torch.__version__, 'maxRssMB': peak_mb()}))


if __name__ == '__main__':
    main()
