"""Reference ONNX exports for `tsimm bench --compare`: the same architectures in PyTorch, exported by
torch.onnx.export (opset 17, dynamic batch), random weights. Benchmark tooling only; tsimm itself runs no Python.

torchvision provides ResNet-50, ResNeXt-50, EfficientNet-B0 and RegNetX-3.2GF. Res2Net, ResNeSt and SE-ResNeXt are
not in torchvision (and timm cannot be installed here), so they are written below from the architecture spec in
timm's forward form (Res2Net's split/cat loop, ResNeSt's 5-D reshape + sum + rsoftmax, SE's mean/conv/sigmoid/mul),
which is what a timm export contains. Parameter counts are printed to check them against `tsimm info`.

    /usr/bin/python3 bench/tools/torch_reference.py OUT_DIR [name ...]
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k=1, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if act else nn.Sequential(*layers)


def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class SE(nn.Module):
    def __init__(self, ch):
        super().__init__()
        rd = make_divisible(ch / 16)
        self.fc1, self.fc2 = nn.Conv2d(ch, rd, 1), nn.Conv2d(rd, ch, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SplitAttn(nn.Module):
    def __init__(self, cin, cout, radix=2, groups=1):
        super().__init__()
        self.radix = radix
        mid, attn = cout * radix, make_divisible(cin * radix * 0.25, 8, 32)
        self.conv = conv_bn(cin, mid, 3, 1, groups * radix)
        self.fc1 = nn.Conv2d(cout, attn, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(attn)
        self.fc2 = nn.Conv2d(attn, mid, 1, groups=groups)
        self.groups = groups

    def forward(self, x):
        x = self.conv(x)
        b, rc, h, w = x.shape
        x = x.reshape(b, self.radix, rc // self.radix, h, w)
        gap = x.sum(dim=1).mean((2, 3), keepdim=True)
        a = self.fc2(F.relu(self.bn1(self.fc1(gap))))
        a = a.view(b, self.groups, self.radix, -1).transpose(1, 2)
        a = F.softmax(a, dim=1).reshape(b, self.radix, rc // self.radix, 1, 1)
        return (x * a).sum(dim=1)


class Bottleneck(nn.Module):
    """ResNet bottleneck with the branch as an option: plain/grouped (+SE), Res2Net, or split attention."""

    def __init__(self, cin, planes, stride, kind, first, avg_down, cardinality=1, base_width=64, scale=4):
        super().__init__()
        cout = planes * 4
        self.kind, self.stride = kind, stride
        if kind == 'res2net':
            width = int(math.floor(planes * base_width / 64.0)) * cardinality
            self.width, self.scale, self.first = width, scale, first
            self.conv1 = conv_bn(cin, width * scale)
            self.convs = nn.ModuleList(conv_bn(width, width, 3, stride, cardinality) for _ in range(scale - 1))
            self.pool = nn.AvgPool2d(3, stride, 1) if first else None
            mid = width * scale
        elif kind == 'resnest':
            width = int(planes * base_width / 64.0) * cardinality
            self.conv1 = conv_bn(cin, width)
            self.avd = nn.AvgPool2d(3, stride, 1) if stride > 1 else None
            self.conv2 = SplitAttn(width, width, 2, cardinality)
            mid = width
        else:
            width = int(planes * base_width / 64.0) * cardinality
            self.conv1 = conv_bn(cin, width)
            self.conv2 = conv_bn(width, width, 3, stride, cardinality)
            mid = width
        self.conv3 = conv_bn(mid, cout, act=False)
        self.se = SE(cout) if kind == 'se' else None
        self.down = None
        if stride != 1 or cin != cout:
            if avg_down:
                pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
                self.down = nn.Sequential(pool, conv_bn(cin, cout, act=False))
            else:
                self.down = conv_bn(cin, cout, 1, stride, act=False)

    def forward(self, x):
        out = self.conv1(x)
        if self.kind == 'res2net':
            spx = torch.split(out, self.width, 1)
            spo = []
            sp = spx[0]
            for i, conv in enumerate(self.convs):
                sp = spx[i] if i == 0 or self.first else sp + spx[i]
                sp = conv(sp)
                spo.append(sp)
            spo.append(self.pool(spx[-1]) if self.pool is not None else spx[-1])
            out = torch.cat(spo, 1)
        elif self.kind == 'resnest':
            out = self.conv2(out)
            if self.avd is not None:
                out = self.avd(out)
        else:
            out = self.conv2(out)
        out = self.conv3(out)
        if self.se is not None:
            out = self.se(out)
        return F.relu(out + (self.down(x) if self.down is not None else x))


class ResNet(nn.Module):
    def __init__(self, kind, deep_stem=False, avg_down=False, **block):
        super().__init__()
        if deep_stem:
            self.stem = nn.Sequential(conv_bn(3, 32, 3, 2), conv_bn(32, 32, 3), conv_bn(32, 64, 3))
        else:
            self.stem = conv_bn(3, 64, 7, 2)
        self.pool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(Bottleneck(cin, planes, stride, kind, j == 0, avg_down, **block))
                cin = planes * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 1000)

    def forward(self, x):
        x = self.layers(self.pool(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(name):
    import torchvision.models as tv
    table = {
        'resnet50': lambda: tv.resnet50(),
        'resnext50_32x4d': lambda: tv.resnext50_32x4d(),
        'efficientnet_b0': lambda: tv.efficientnet_b0(),
        'regnet_x_3_2gf': lambda: tv.regnet_x_3_2gf(),
        'res2net50_26w_4s': lambda: ResNet('res2net', base_width=26, scale=4),
        'resnest50d': lambda: ResNet('resnest', deep_stem=True, avg_down=True),
        'seresnext50_32x4d': lambda: ResNet('se', cardinality=32, base_width=4),
    }
    return table[name]()


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or ['resnet50', 'resnext50_32x4d', 'efficientnet_b0', 'regnet_x_3_2gf', 'res2net50_26w_4s', 'resnest50d', 'seresnext50_32x4d']
    torch.manual_seed(0)
    for name in names:
        model = build(name).eval()
        params = sum(p.numel() for p in model.parameters())
        path = f'{out}/{name}.onnx'
        torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, opset_version=17, input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
        print(f'{name}: {params} params -> {path}')


if __name__ == '__main__':
    main()
