"""Reference ONNX exports of the newer families for `tsimm bench --compare` (MobileNetV3, ConvNeXt, EfficientNetV2,
ViT): the same architectures in PyTorch, exported by torch.onnx.export (opset 17, dynamic batch), random weights.
Benchmark tooling only; tsimm itself runs no Python. Needs Debian's python3-torchvision (0.14).

timm cannot be installed here, so torchvision stands in where it has the architecture (parameter counts equal ours,
printed below to check against `tsimm info`):
- mobilenet_v3_large = timm mobilenetv3_large_100 (5,483,032). torchvision's head is Linear(960, 1280) on the
  pooled features where timm has a 1x1 conv_head with bias: the same GEMM.
- convnext_tiny = timm convnext_tiny (28,589,128): both run the block channels-last (permute, LayerNorm, Linear,
  GELU, Linear, layer scale, permute).
- efficientnet_v2_s = timm tf_efficientnetv2_s (21,458,488) but for TF SAME padding: timm pads stride-2 convs
  asymmetrically for the input size (ours: asymmetric Conv pads, no Pad op) where torchvision pads symmetrically;
  BN eps 1e-3 vs 1e-5 is folded away. Exported at 300 px, tf_efficientnetv2_s's input size.
ViT-S/16 is not in torchvision 0.14; `ViT` below is timm's VisionTransformer forward (fused qkv Linear, explicit
q·kᵀ·scale, softmax, ·v; LayerNorm eps 1e-6; exact GELU; class token; learned pos_embed) = vit_small_patch16_224
(22,050,664).

    /usr/bin/python3 bench/tools/torch_reference_modern.py OUT_DIR [name ...]
"""
import sys

import torch
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, dim=384, depth=12, heads=6, patch=16, img=224, classes=1000):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, (img // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def build(name):
    import torchvision.models as tv
    table = {
        'mobilenet_v3_large': (lambda: tv.mobilenet_v3_large(), 224),
        'convnext_tiny': (lambda: tv.convnext_tiny(), 224),
        'efficientnet_v2_s': (lambda: tv.efficientnet_v2_s(), 300),
        'vit_small_patch16_224': (lambda: ViT(), 224),
    }
    make, size = table[name]
    return make(), size


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or ['mobilenet_v3_large', 'convnext_tiny', 'efficientnet_v2_s', 'vit_small_patch16_224']
    torch.manual_seed(0)
    for name in names:
        model, size = build(name)
        model = model.eval()
        params = sum(p.numel() for p in model.parameters())
        path = f'{out}/{name}.onnx'
        with torch.no_grad():
            torch.onnx.export(model, torch.randn(1, 3, size, size), path, opset_version=17, input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
        print(f'{name}: {params} params, {size} px -> {path}')


if __name__ == '__main__':
    main()
