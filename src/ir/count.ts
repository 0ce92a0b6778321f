/**
 * Counting from the IR that is exported: parameters, multiply-accumulates, per-layer table.
 *
 * Convention (stated in every report): MACs are the multiply-accumulates of convolutions and fully connected
 * layers at batch 1; FLOPs = 2 × MACs. Parameters are trainable tensors (weights, biases, norm scale/shift);
 * BatchNorm running statistics are buffers and are reported separately.
 *
 * `paddleModelStat` reconstructs the counter behind the old PaddleClas tables (Paddle 1.x
 * `fluid.contrib.model_stat` under Python 2) so `tsimm verify` can explain seed numbers it cannot match.
 */
import { numel, type Graph, type Node } from './graph.js';

export interface LayerCount {
  name: string;
  op: string;
  output: (number | 'N')[];
  params: number;
  macs: number;
}

export interface Counts {
  inputSize: [number, number];
  params: number;
  /** BatchNorm running mean/var (PaddleClas' newer tables and Gluon include them in "params"). */
  bufferParams: number;
  macs: number;
  flops: number;
  layers: LayerCount[];
}

const perSample = (shape: (number | 'N')[]): number => numel(shape.slice(1) as number[]);

function nodeMacs(g: Graph, n: Node): number {
  if (n.op === 'Conv') {
    const [, inPerGroup, kh, kw] = g.params.get(n.params[0]!)!.shape as [number, number, number, number];
    return perSample(g.shape(n.outputs[0]!)) * inPerGroup * kh * kw;
  }
  if (n.op === 'Gemm') return numel(g.params.get(n.params[0]!)!.shape);
  // A Linear on tokens: in·out per token. Attention's q·kᵀ and attn·v (MatMul): M·K·P per head, counted as
  // MACs like fvcore/timm do; LayerNorm, GELU, Softmax and GRN count 0 like BatchNorm and activations.
  if (n.op === 'Linear') {
    const out = g.shape(n.outputs[0]!);
    return (perSample(out) / (out[out.length - 1] as number)) * numel(g.params.get(n.params[0]!)!.shape);
  }
  if (n.op === 'MatMul') {
    const a = g.shape(n.inputs[0]!);
    return perSample(g.shape(n.outputs[0]!)) * (a[a.length - 1] as number);
  }
  return 0;
}

export function countGraph(g: Graph): Counts {
  let params = 0;
  let bufferParams = 0;
  for (const p of g.params.values()) {
    if (p.role === 'bn_mean' || p.role === 'bn_var') bufferParams += numel(p.shape);
    else params += numel(p.shape);
  }
  const layers: LayerCount[] = [];
  let macs = 0;
  for (const n of g.nodes) {
    const m = nodeMacs(g, n);
    macs += m;
    const p = n.params.reduce((s, name) => {
      const q = g.params.get(name)!;
      return q.role === 'bn_mean' || q.role === 'bn_var' ? s : s + numel(q.shape);
    }, 0);
    if (p || m || n.op.endsWith('Pool')) layers.push({ name: n.name, op: n.op, output: g.shape(n.outputs[0]!), params: p, macs: m });
  }
  const input = g.shape(g.inputs[0]!);
  return { inputSize: [input[2] as number, input[3] as number], params, bufferParams, macs, flops: 2 * macs, layers };
}

/** Is this conv a fully connected layer in disguise (1×1 kernel on a 1×1 map, with bias: an SE FC)? */
function isFc(g: Graph, n: Node): boolean {
  if (n.op !== 'Conv' || n.params.length < 2) return false;
  const s = g.shape(n.inputs[0]!);
  const k = n.attrs['kernel_shape'] as number[];
  return s[2] === 1 && s[3] === 1 && k[0] === 1 && k[1] === 1;
}

/**
 * Paddle 1.x `model_stat.summary` as the old PaddleClas tables ran it (Python 2, static program, batch −1):
 * conv params C_out·k²·⌊(C_in/g)/g⌋ (a grouped conv divided by its groups twice, floored); conv FLOPs twice
 * that per output pixel; BN 2·C·H·W FLOPs and 2·C params; pools C·H·W·k² (global: C); fc in·out FLOPs,
 * in·out + 1 params; ReLU/Sigmoid subtract their per-sample size (the −1 batch dim); add/mul/concat count 0.
 */
export function paddleModelStat(g: Graph): { params: number; flops: number } {
  let params = 0;
  let flops = 0;
  for (const n of g.nodes) {
    const out = g.shape(n.outputs[0]!);
    switch (n.op) {
      case 'Conv': {
        const [cOut, inPerGroup, kh, kw] = g.params.get(n.params[0]!)!.shape as [number, number, number, number];
        if (isFc(g, n)) {
          params += cOut * inPerGroup + 1;
          flops += cOut * inPerGroup;
          break;
        }
        const groups = n.attrs['group'] as number;
        const kernel = kh * kw * Math.floor(inPerGroup / groups);
        params += cOut * kernel;
        flops += 2 * ((out[2] as number) * (out[3] as number)) * cOut * kernel;
        break;
      }
      case 'Gemm': {
        const w = numel(g.params.get(n.params[0]!)!.shape);
        params += w + 1;
        flops += w;
        break;
      }
      case 'BatchNormalization':
        params += 2 * (out[1] as number);
        flops += 2 * perSample(out);
        break;
      case 'MaxPool':
      case 'AveragePool': {
        const k = n.attrs['kernel_shape'] as number[];
        flops += perSample(out) * k[0]! * k[1]!;
        break;
      }
      case 'GlobalAveragePool':
        flops += out[1] as number;
        break;
      case 'Relu':
      case 'Sigmoid':
        flops -= perSample(out);
        break;
      default:
        break;
    }
  }
  return { params, flops };
}

/**
 * The counter behind PaddleClas' EfficientNet table (2020 fluid program): it sees only `conv2d`, `mul` and
 * `batch_norm` parameters, so depthwise convs (separate `depthwise_conv2d` ops) and every bias (separate
 * `elementwise_add` ops) are missing; FLOPs are 2·MACs of the other convs and FCs plus one op per BN and
 * activation element.
 */
export function paddleFluidNoDepthwise(g: Graph): { params: number; flops: number } {
  let params = 0;
  let flops = 0;
  const isDepthwise = (n: Node) => n.op === 'Conv' && (n.attrs['group'] as number) > 1 && g.params.get(n.params[0]!)!.shape[1] === 1;
  for (const n of g.nodes) {
    const out = g.shape(n.outputs[0]!);
    if (n.op === 'Conv' || n.op === 'Gemm') {
      if (isDepthwise(n)) continue;
      params += numel(g.params.get(n.params[0]!)!.shape);
      flops += 2 * nodeMacs(g, n);
    } else if (n.op === 'BatchNormalization') {
      params += 2 * (out[1] as number);
      flops += perSample(out);
    } else if (n.op === 'Relu' || n.op === 'Sigmoid' || n.op === 'SiLU') {
      flops += perSample(out);
    }
  }
  return { params, flops };
}
