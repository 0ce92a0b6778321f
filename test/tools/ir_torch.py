"""Gradient reference for tests: interpret tsimm's graph IR with PyTorch ops and let autograd differentiate it.

The IR (nodes, attributes, parameter names) is dumped by the test as JSON; this script runs it in float64 and in
float32 with torch.nn.functional, in BatchNorm train or frozen mode, takes the cross-entropy (label smoothing) of
the logits, and writes every parameter's gradient. The backward pass under test is tsimm's own (ONNX ops built
by src/train/autodiff.ts); this one is PyTorch's autograd, so the two share nothing but the forward semantics,
which the test checks through the logits. Test tooling only: the product runs no Python.

    /usr/bin/python3 test/tools/ir_torch.py DIR     (DIR/graph.json, weights.safetensors, x.npy -> DIR/ref.json,
                                                     grads64.safetensors, grads32.safetensors, logits64.npy)
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load_st(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).reshape(v['shape']).copy()
    return out


def save_st(path, tensors):
    header, offset, blobs = {}, 0, []
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k], dtype=np.float32)
        header[k] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def pad4(x, pads, value=0.0):
    t, l, b, r = pads
    return F.pad(x, (l, r, t, b), value=value) if any(pads) else x


def run(graph, params, x, train):
    v = {graph['input']: x}
    frozen = set(graph.get('frozen_bn', []))
    for n in graph['nodes']:
        op, a = n['op'], n['attrs']
        ins = [v[i] for i in n['inputs']]
        p = [params[k] for k in n['params']]
        if op == 'Conv':
            y = F.conv2d(pad4(ins[0], a['pads']), p[0], p[1] if len(p) > 1 else None, a['strides'], 0, a['dilations'], a['group'])
        elif op == 'BatchNormalization':
            y = F.batch_norm(ins[0], p[2].detach().clone(), p[3].detach().clone(), p[0], p[1], train and n['name'] not in frozen, 0.1, a['epsilon'])
        elif op == 'Relu':
            y = F.relu(ins[0])
        elif op == 'Sigmoid':
            y = torch.sigmoid(ins[0])
        elif op == 'SiLU':
            y = F.silu(ins[0])
        elif op == 'Add':
            y = ins[0] + ins[1]
        elif op == 'Mul':
            y = ins[0] * ins[1]
        elif op == 'MaxPool':
            y = F.max_pool2d(pad4(ins[0], a['pads'], float('-inf')), a['kernel_shape'], a['strides'], 0, 1, bool(a['ceil_mode']))
        elif op == 'AveragePool':
            t, l, b, r = a['pads']
            if t == b and l == r:
                y = F.avg_pool2d(ins[0], a['kernel_shape'], a['strides'], (t, l), bool(a['ceil_mode']), bool(a['count_include_pad']))
            else:
                raise ValueError('asymmetric average pool padding')
        elif op == 'GlobalAveragePool':
            y = ins[0].mean((2, 3), keepdim=True)
        elif op == 'Concat':
            y = torch.cat(ins, a['axis'])
        elif op == 'Split':
            ys = torch.split(ins[0], a['split'], a['axis'])
            for o, t in zip(n['outputs'], ys):
                v[o] = t
            continue
        elif op == 'Reshape':
            y = ins[0].reshape([ins[0].shape[0]] + a['shape'][1:])
        elif op == 'Transpose':
            y = ins[0].permute(*a['perm'])
        elif op == 'Softmax':
            y = torch.softmax(ins[0], a['axis'])
        elif op == 'ReduceSum':
            y = ins[0].sum(a['axes'], keepdim=bool(a['keepdims']))
        elif op == 'Flatten':
            y = torch.flatten(ins[0], 1)
        elif op == 'Gemm':
            y = F.linear(ins[0], p[0], p[1])
        elif op == 'Pad':
            y = pad4(ins[0], a['pads'])
        else:
            raise ValueError(f'no rule for {op}')
        v[n['outputs'][0]] = y
    return v['logits']


def main():
    d = sys.argv[1]
    graph = json.load(open(f'{d}/graph.json'))
    w = load_st(f'{d}/weights.safetensors')
    x = np.load(f'{d}/x.npy')
    train = graph['batch_norm'] == 'train'
    targets = torch.tensor(graph['targets'])
    ref = {}
    for name, dt in (('64', torch.float64), ('32', torch.float32)):
        params = {k: torch.tensor(t, dtype=dt, requires_grad=k in graph['trainable']) for k, t in w.items()}
        logits = run(graph, params, torch.tensor(x, dtype=dt), train)
        loss = F.cross_entropy(logits, targets, label_smoothing=graph['label_smoothing'])
        loss.backward()
        save_st(f'{d}/grads{name}.safetensors', {k: params[k].grad.double().numpy() for k in graph['trainable']})
        ref[f'loss{name}'] = loss.item()
        if name == '64':
            np.save(f'{d}/logits64.npy', logits.detach().numpy().astype(np.float32))
    json.dump(ref, open(f'{d}/ref.json', 'w'))


if __name__ == '__main__':
    main()
