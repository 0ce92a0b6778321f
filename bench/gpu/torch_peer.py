"""PyTorch eager peer of the GPU benchmark: the models of bench.ts's manifest.json, same batches, precisions and
crop sizes, random weights, timed the way tsimm is (host input in, host logits out), plus the device-only time.

Architectures from timm where it is installed (the H200 image has it), else torchvision's ResNets/ResNeXts,
else bench/tools/torch_reference.py's timm-form Res2Net / ResNeSt / SE-ResNeXt; a model none of them has is skipped.

    python3 bench/gpu/torch_peer.py OUT/manifest.json OUT/torch.json [--deadline SECONDS] [--device cuda|cpu]
"""
import argparse
import contextlib
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# torch_reference.py's timm-form nets (its build() needs torchvision; these classes do not).
REFERENCE = {
    'res2net50_26w_4s': lambda r: r.ResNet('res2net', base_width=26, scale=4),
    'resnest50d': lambda r: r.ResNet('resnest', deep_stem=True, avg_down=True),
    'seresnext50_32x4d': lambda r: r.ResNet('se', cardinality=32, base_width=4),
}
TORCHVISION = {'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d', 'resnext101_32x8d', 'resnext101_64x4d'}


def builder(peer):
    """(build function, source name) for a timm architecture name, or (None, why)."""
    try:
        import timm
        if timm.is_model(peer):
            return (lambda: timm.create_model(peer, pretrained=False)), f'timm {timm.__version__}'
    except ImportError:
        pass
    if peer in TORCHVISION:
        try:
            import torchvision.models as tv
            return getattr(tv, peer), f'torchvision {__import__("torchvision").__version__}'
        except ImportError:
            pass
    if peer in REFERENCE:
        sys.path.insert(0, os.path.join(HERE, '..', 'tools'))
        try:
            import torch_reference as ref
        finally:
            sys.path.pop(0)
        return (lambda: REFERENCE[peer](ref)), 'bench/tools/torch_reference.py'
    return None, f'no timm here and no other definition of {peer}'


def timed(model, x_host, device, dtype, warmup, min_runs, min_seconds):
    """Mean ms of host→device copy + forward + logits back to the host; and of the forward alone (CUDA events)."""
    cuda = device.type == 'cuda'
    with torch.inference_mode():
        for _ in range(warmup):
            model(x_host.to(device, dtype)).float().cpu()
        host = []
        start = time.perf_counter()
        while len(host) < min_runs or time.perf_counter() - start < min_seconds:
            t = time.perf_counter()
            model(x_host.to(device, dtype)).float().cpu()  # .cpu() waits for the GPU
            host.append((time.perf_counter() - t) * 1000)
        x_dev = x_host.to(device, dtype)
        dev = []
        for _ in range(len(host)):
            if cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                model(x_dev)
                b.record()
                b.synchronize()
                dev.append(a.elapsed_time(b))
            else:
                t = time.perf_counter()
                model(x_dev)
                dev.append((time.perf_counter() - t) * 1000)
    host.sort()
    return sum(host) / len(host), host[(len(host) - 1) // 2], sum(dev) / len(dev), len(host)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('manifest')
    ap.add_argument('out')
    ap.add_argument('--deadline', type=float, default=150)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = ap.parse_args()
    t0 = time.perf_counter()
    man = json.load(open(a.manifest))
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    timing = man['timing']
    try:
        import timm
        timm_version = timm.__version__
    except ImportError:
        timm_version = None
    result = {
        'device': torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu',
        'torch': torch.__version__,
        'timm': timm_version,
        'protocol': f"eager, torch.inference_mode, cudnn.benchmark, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} (PyTorch's default: fp32 convs may use TF32); "
                    f"{timing['warmup']} warm-up runs, then >= {timing['minRuns']} runs and >= {timing['minSeconds']} s; meanMs = host batch in, logits back on the host, deviceMs = the forward alone (CUDA events)",
        'rows': [],
        'skipped': [],
    }

    def save():
        result['seconds'] = time.perf_counter() - t0
        with open(a.out, 'w') as f:
            json.dump(result, f, indent=1)

    for m in man['models']:
        name, peer, crop = m['name'], m['peer'], m['crop']
        if not peer:
            result['skipped'].append({'model': name, 'why': 'no timm architecture of the same structure'})
            continue
        if time.perf_counter() - t0 > a.deadline:
            result['skipped'].append({'model': name, 'why': 'deadline'})
            continue
        build, source = builder(peer)
        if build is None:
            result['skipped'].append({'model': name, 'why': source})
            continue
        torch.manual_seed(0)
        try:
            # Parameters made on the GPU (torch >= 2): no slow host init of the large models.
            with (device if hasattr(device, '__enter__') else contextlib.nullcontext()):
                model = build().eval().to(device)
        except Exception as e:
            result['skipped'].append({'model': name, 'why': f'{source} {peer}: {type(e).__name__}: {str(e).splitlines()[0][:200]}'})
            continue
        params = sum(p.numel() for p in model.parameters())
        if m.get('params') and abs(params - m['params']) > 0.005 * m['params']:
            result['skipped'].append({'model': name, 'why': f'{source} {peer} has {params} parameters, tsimm {m["params"]}: timed anyway, not the same net'})
        for precision in man['precisions']:
            dtype = torch.float16 if precision == 'fp16' else torch.float32
            try:
                model = model.to(dtype)
                for batch in man['batches']:
                    x = torch.rand(batch, 3, crop, crop) * 2 - 1
                    mean, p50, dev, runs = timed(model, x, device, dtype, timing['warmup'], timing['minRuns'], timing['minSeconds'])
                    result['rows'].append({'model': name, 'peer': peer, 'source': source, 'precision': precision, 'batch': batch, 'crop': crop,
                                           'meanMs': mean, 'p50Ms': p50, 'deviceMs': dev, 'runs': runs, 'params': params})
                    print(f'[{time.perf_counter() - t0:6.1f} s] torch {name} ({peer}) {precision} bs{batch}: {mean:.2f} ms (device {dev:.2f})', file=sys.stderr, flush=True)
            except Exception as e:  # e.g. fp16 convolutions on the CPU
                result['skipped'].append({'model': name, 'why': f'{precision}: {type(e).__name__}: {str(e).splitlines()[0][:200]}'})
        del model
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        save()
    save()


if __name__ == '__main__':
    main()
