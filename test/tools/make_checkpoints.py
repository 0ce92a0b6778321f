#!/usr/bin/env python3
"""Test-only helper: writes checkpoints with real PyTorch / pickle / numpy for tsimm's loader tests.

usage: make_checkpoints.py formats OUT_DIR
       make_checkpoints.py model IN.safetensors OUT_DIR          (timm keys → .pth zip/legacy/fp16/nested)
       make_checkpoints.py paddle SCHEME IN.safetensors OUT.pdparams PROTOCOL
       make_checkpoints.py hostile OUT_DIR
Never part of the product: tsimm itself reads these files without Python.
"""
import json, os, pickle, struct, sys, zipfile
import numpy as np


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for k in sorted(tensors):
        a = np.array(tensors[k], dtype="<f4", order="C")  # keeps 0-d shapes (ascontiguousarray would not)
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n)); base = 8 + n; out = {}
        for k, v in header.items():
            if k == "__metadata__": continue
            b, e = v["data_offsets"]; f.seek(base + b)
            out[k] = np.frombuffer(f.read(e - b), dtype="<f4").reshape(v["shape"]).copy()
        return out


def formats(out):
    """Every storage feature a state_dict can have, plus the float32 values each tensor must read as."""
    import torch
    from collections import OrderedDict
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g)
    shared = torch.randn(10, generator=g)
    sd = OrderedDict()
    sd["conv.weight"] = torch.randn(3, 2, 3, 3, generator=g)
    sd["transposed"] = base.t()                      # strides (1, 6)
    sd["sliced"] = shared[2:8]                        # storage offset 2
    sd["shared_a"] = shared.view(2, 5)                # same storage as sliced
    sd["half"] = torch.randn(5, generator=g).half()
    sd["bfloat"] = torch.randn(7, generator=g).bfloat16()
    sd["double"] = torch.randn(2, 2, generator=g).double()
    sd["scalar"] = torch.tensor(3.5)
    sd["bn.num_batches_tracked"] = torch.tensor(7)
    sd["mask"] = torch.tensor([True, False])
    expected = {k: v.float().numpy() for k, v in sd.items() if v.is_floating_point()}
    save_safetensors(os.path.join(out, "expected.safetensors"), expected)
    torch.save(sd, os.path.join(out, "zip.pth"))
    torch.save(sd, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"epoch": 3, "arch": "x", "state_dict": OrderedDict((f"module.{k}", v) for k, v in sd.items())}, os.path.join(out, "nested.pth"))


def model(src, out):
    import torch
    from collections import OrderedDict
    w = load_safetensors(src)
    sd = OrderedDict((k, torch.from_numpy(v)) for k, v in w.items())
    sd["bn1.num_batches_tracked"] = torch.tensor(100)
    torch.save(sd, os.path.join(out, "model.pth"))
    torch.save(sd, os.path.join(out, "model_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"model": OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())}, os.path.join(out, "model_fp16.pth"))


BN = {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance"}


def paddle_legendary(k, depths):
    """spec §8.2 'Legendary ResNet': stem.{k}, blocks.{n}.conv{j}/short, fc (Linear [in, out])."""
    stem = {"conv1.0": "stem.0.conv", "conv1.1": "stem.0.bn", "conv1.3": "stem.1.conv", "conv1.4": "stem.1.bn", "conv1.6": "stem.2.conv", "bn1": "stem.2.bn",
            "conv1": "stem.0.conv"}
    mod, leaf = k.rsplit(".", 1)
    if mod in stem:
        p = stem[mod]
        if mod == "bn1" and "conv1.6.weight" not in depths["__keys__"]: p = "stem.0.bn"
        return f"{p}.{BN[leaf] if p.endswith('bn') else leaf}"
    if mod == "fc": return k
    parts = mod.split(".")
    s, i = int(parts[0][5:]) - 1, int(parts[1])
    n = sum(depths["layers"][:s]) + i
    rest = parts[2:]
    if rest[0] == "downsample":
        vd = f"layer{s+1}.{i}.downsample.2.weight" in depths["__keys__"]
        idx = int(rest[1])
        is_bn = idx == (2 if vd else 1)
        return f"blocks.{n}.short.{'bn' if is_bn else 'conv'}.{BN[leaf] if is_bn else leaf}"
    name = rest[0]
    j = int(name[-1]) - 1
    return f"blocks.{n}.conv{j}.{'bn' if name.startswith('bn') else 'conv'}.{BN[leaf] if name.startswith('bn') else leaf}"


def paddle_efficientnet(k, info):
    """spec §4.7: _ef._conv_stem / {_blocks|block}.{n}.. units _ecn/_dcn/_se/_pcn, head _conv, _fc."""
    mod, leaf = k.rsplit(".", 1)
    conv = lambda unit: f"{unit}._conv._conv._conv.{leaf}"
    bn = lambda unit: f"{unit}._conv._bn.{BN[leaf]}"
    if mod == "conv_stem": return conv("_ef._conv_stem")
    if mod == "bn1": return bn("_ef._conv_stem")
    # The head ConvBNLayer is the top-level `_conv`: its conv is `_conv._conv._conv`, its BN `_conv._bn`.
    if mod == "conv_head": return f"_conv._conv._conv.{leaf}"
    if mod == "bn2": return f"_conv._bn.{BN[leaf]}"
    if mod == "classifier": return f"_fc.{leaf}"
    _, s, j, *rest = mod.split(".")
    s, j = int(s), int(j)
    n = sum(info["repeats"][:s]) + j
    prefix = f"_ef.{'_blocks' if j == 0 else 'block'}.{n}.."
    mb = f"blocks.{s}.{j}.conv_pwl.weight" in info["__keys__"]
    r = ".".join(rest)
    if r == "se.conv_reduce": return f"{prefix}_se._conv1._conv.{leaf}"
    if r == "se.conv_expand": return f"{prefix}_se._conv2._conv.{leaf}"
    table = {"conv_dw": ("_dcn", False), "conv_pwl": ("_pcn", False), "bn3": ("_pcn", True)}
    if mb: table.update({"conv_pw": ("_ecn", False), "bn1": ("_ecn", True), "bn2": ("_dcn", True)})
    else: table.update({"conv_pw": ("_pcn", False), "bn1": ("_dcn", True), "bn2": ("_pcn", True)})
    unit, is_bn = table[r]
    return bn(prefix + unit) if is_bn else conv(prefix + unit)


def paddle_regnet(k, info):
    """spec §3.4: conv (stem), s{S}_b{B}.conv{0,1,2}/short, out."""
    mod, leaf = k.rsplit(".", 1)
    if mod.startswith("head.fc"): return f"out.{leaf}"
    parts = mod.split(".")
    wrap = "_conv" if parts[-1] == "conv" else "_batch_norm"
    val = leaf if wrap == "_conv" else BN[leaf]
    if parts[0] == "stem": return f"conv.{wrap}.{val}"
    unit = "short" if parts[2] == "downsample" else f"conv{int(parts[2][-1]) - 1}"
    return f"{parts[0]}_{parts[1]}.{unit}.{wrap}.{val}"


def paddle_mobilenetv3(k, info):
    """ppcls legendary mobilenet_v3.py: conv (stem), flat blocks.{n}.{expand,bottleneck,linear}_conv / mid_se.conv{1,2},
    last_second_conv, last_conv (no bias), fc (Linear [in, out])."""
    mod, leaf = k.rsplit(".", 1)
    unit = lambda p, is_bn: f"{p}.bn.{BN[leaf]}" if is_bn else f"{p}.conv.{leaf}"
    if mod == "conv_stem": return unit("conv", False)
    if mod == "bn1": return unit("conv", True)
    if mod == "conv_head": return f"last_conv.{leaf}"
    if mod == "classifier": return f"fc.{leaf}"
    _, s, j, *rest = mod.split(".")
    s, j, r = int(s), int(j), ".".join(rest)
    if s == len(info["stages"]): return unit("last_second_conv", r == "bn1")
    n = sum(info["stages"][:s]) + j
    if r.startswith("se."): return f"blocks.{n}.mid_se.conv{1 if r == 'se.conv_reduce' else 2}.{leaf}"
    table = {"conv_pw": ("expand_conv", False), "bn1": ("expand_conv", True), "conv_dw": ("bottleneck_conv", False), "bn2": ("bottleneck_conv", True),
             "conv_pwl": ("linear_conv", False), "bn3": ("linear_conv", True)}
    return unit(f"blocks.{n}.{table[r][0]}", table[r][1])


def paddle(scheme, src, dst, protocol, info_json):
    w = load_safetensors(src)
    info = json.loads(info_json); info["__keys__"] = set(w)
    rename = {"legendary": paddle_legendary, "efficientnet": paddle_efficientnet, "regnet": paddle_regnet, "mobilenetv3": paddle_mobilenetv3}[scheme]
    out = {}
    for k, v in w.items():
        pk = rename(k, info)
        out[pk] = np.ascontiguousarray(v.T) if v.ndim == 2 else v.astype(np.float32)
        if pk.endswith(("squeeze.weight", "excitation.weight")): out[pk] = np.ascontiguousarray(v.reshape(v.shape[0], v.shape[1]).T)
    out["StructuredToParameterName@@"] = {k: f"static_{i}" for i, k in enumerate(out)}
    with open(dst, "wb") as f:
        pickle.dump(out, f, protocol=protocol)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/tsimm-pwned",))


def hostile(out):
    with open(os.path.join(out, "evil.pkl"), "wb") as f:
        pickle.dump({"conv.weight": Evil()}, f, protocol=2)
    # The same payload inside a torch-style zip (what a malicious .pth would be).
    with zipfile.ZipFile(os.path.join(out, "evil.pth"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "formats": formats(sys.argv[2])
    elif cmd == "model": model(sys.argv[2], sys.argv[3])
    elif cmd == "paddle": paddle(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif cmd == "hostile": hostile(sys.argv[2])
