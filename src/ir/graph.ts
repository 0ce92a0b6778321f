/**
 * The graph IR every reader shares: ONNX emission, parameter/MAC counting, layer summaries and shape checks.
 *
 * Shapes are static except the batch dimension, which is the symbol 'N'. Every node carries the module path
 * that created it (e.g. `layer1.0.conv1`), and every parameter is named exactly like the source checkpoint's
 * state_dict key, so a timm safetensors file maps onto the graph with no renaming.
 */

export type Dim = number | 'N';
export type Shape = Dim[];

/** What a parameter is, which decides how it is counted, initialised and folded. */
export type ParamRole =
  | 'weight'
  | 'bias'
  | 'bn_weight'
  | 'bn_bias'
  | 'bn_mean'
  | 'bn_var'
  /** LayerNorm scale (init 1) and shift (init 0). */
  | 'norm_weight'
  | 'norm_bias'
  /** A tensor used as a value (class/distillation token, position embedding, layer scale, GRN): see Param.init. */
  | 'embed';

export interface Param {
  name: string;
  shape: number[];
  role: ParamRole;
  /** How an `embed` parameter starts when trained from scratch (timm's init): a constant or a truncated normal. */
  init?: { fill: number } | { std: number };
}

export type AttrValue = number | number[] | string;

export interface Node {
  op: OpType;
  /** Module path that created the node (the checkpoint key prefix of its parameters). */
  name: string;
  inputs: string[];
  /** Parameter names in the order the ONNX operator takes them after the data inputs. */
  params: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export type OpType =
  | 'Conv'
  | 'BatchNormalization'
  | 'Relu'
  | 'Sigmoid'
  | 'SiLU'
  | 'Add'
  | 'Mul'
  | 'MaxPool'
  | 'AveragePool'
  | 'GlobalAveragePool'
  | 'Concat'
  | 'Split'
  | 'Reshape'
  | 'Transpose'
  | 'Softmax'
  | 'ReduceSum'
  | 'Flatten'
  | 'Gemm'
  | 'Pad'
  | 'HardSwish'
  | 'HardSigmoid'
  | 'DropPath'
  | 'Dropout'
  // Transformer / ConvNeXt pieces (src/ir/graph.ts `layerNorm` … `grn`); lowered in src/onnx/export.ts.
  | 'LayerNormalization'
  | 'Gelu'
  | 'MatMul'
  | 'Linear'
  | 'Parameter'
  | 'ExpandBatch'
  | 'Scale'
  | 'GRN';

/** An error in the model definition or input size, naming the layer where it happened. */
export class ShapeError extends Error {
  constructor(
    readonly layer: string,
    message: string,
  ) {
    super(`${layer}: ${message}`);
    this.name = 'ShapeError';
  }
}

export interface ConvOptions {
  out: number;
  kernel: number | [number, number];
  stride?: number;
  /** Symmetric padding; defaults to `dilation * (kernel - 1) / 2` ("same" for odd kernels at stride 1). */
  pad?: number | [number, number, number, number];
  groups?: number;
  dilation?: number;
  bias?: boolean;
}

export interface PoolOptions {
  kernel: number;
  stride: number;
  /** [top, left, bottom, right] or one number for all sides. */
  pad?: number | [number, number, number, number];
  ceil?: boolean;
  /** AveragePool only: whether zero padding counts in the mean (PyTorch default true; Paddle `exclusive` = false). */
  countIncludePad?: boolean;
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);
const quad = (v: number | [number, number, number, number]): [number, number, number, number] =>
  typeof v === 'number' ? [v, v, v, v] : v;

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Spatial output size of a conv or pool window, as ONNX (and PyTorch for pad-0 ceil mode) computes it. */
export function windowOutput(size: number, kernel: number, stride: number, padBegin: number, padEnd: number, dilation = 1, ceil = false): number {
  const span = size + padBegin + padEnd - dilation * (kernel - 1) - 1;
  if (span < 0) return 0;
  return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

/**
 * A model graph under construction. Family files call these methods with module paths; each method checks
 * shapes immediately and throws a ShapeError naming the layer.
 */
export class Graph {
  readonly nodes: Node[] = [];
  readonly params = new Map<string, Param>();
  readonly shapes = new Map<string, Shape>();
  readonly inputs: string[] = [];
  readonly outputs: string[] = [];
  /** Stage outputs a features-only model can return (timm's feature_info): value and module path. */
  readonly featurePoints: { value: string; module: string }[] = [];
  private counter = 0;
  private readonly reserved = new Set<string>();

  input(name: string, shape: Shape): string {
    this.shapes.set(name, shape);
    this.inputs.push(name);
    return name;
  }

  output(value: string, name: string): string {
    // Outputs get stable names; an Identity-free rename keeps the producing node's output.
    const node = this.nodes.find((n) => n.outputs.includes(value));
    if (!node) throw new ShapeError(name, `output ${value} is not produced by any node`);
    node.outputs[node.outputs.indexOf(value)] = name;
    for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === value ? name : i));
    this.shapes.set(name, this.shapes.get(value)!);
    this.shapes.delete(value);
    this.outputs.push(name);
    return name;
  }

  shape(value: string): Shape {
    const s = this.shapes.get(value);
    if (!s) throw new Error(`unknown value ${value}`);
    return s;
  }

  /**
   * Declare parameters before the layers that use them, so the parameter list follows the checkpoint's order
   * where it differs from execution order (timm's Res2Net lists all `convs.*` before all `bns.*`).
   */
  reserve(params: Param[]): void {
    for (const p of params) {
      if (this.params.has(p.name)) throw new ShapeError(p.name, 'parameter defined twice');
      this.params.set(p.name, p);
      this.reserved.add(p.name);
    }
  }

  param(name: string, shape: number[], role: ParamRole): string {
    if (this.reserved.delete(name)) {
      const r = this.params.get(name)!;
      if (r.role !== role || r.shape.join() !== shape.join()) throw new ShapeError(name, `reserved as ${r.role} [${r.shape.join(', ')}], used as ${role} [${shape.join(', ')}]`);
      return name;
    }
    if (this.params.has(name)) throw new ShapeError(name, 'parameter defined twice');
    this.params.set(name, { name, shape, role });
    return name;
  }

  private add(op: OpType, name: string, inputs: string[], params: string[], attrs: Record<string, AttrValue>, outShapes: Shape[]): string[] {
    const outputs = outShapes.map((s, i) => {
      const id = `${name || op}#${this.counter++}${outShapes.length > 1 ? `.${i}` : ''}`;
      this.shapes.set(id, s);
      return id;
    });
    this.nodes.push({ op, name, inputs, params, outputs, attrs });
    return outputs;
  }

  private spatial(layer: string, x: string): { n: Dim; c: number; h: number; w: number } {
    const s = this.shape(x);
    if (s.length !== 4) throw new ShapeError(layer, `expects a 4-D NCHW input, got [${s.join(', ')}]`);
    return { n: s[0]!, c: s[1] as number, h: s[2] as number, w: s[3] as number };
  }

  conv(x: string, path: string, o: ConvOptions): string {
    const { n, c, h, w } = this.spatial(path, x);
    const [kh, kw] = pair(o.kernel);
    const stride = o.stride ?? 1;
    const dilation = o.dilation ?? 1;
    const groups = o.groups ?? 1;
    const pads = quad(o.pad ?? [((kh - 1) * dilation) >> 1, ((kw - 1) * dilation) >> 1, ((kh - 1) * dilation) >> 1, ((kw - 1) * dilation) >> 1]);
    if (c % groups !== 0 || o.out % groups !== 0) {
      throw new ShapeError(path, `channels in ${c} / out ${o.out} are not divisible by groups ${groups}`);
    }
    const oh = windowOutput(h, kh, stride, pads[0], pads[2], dilation);
    const ow = windowOutput(w, kw, stride, pads[1], pads[3], dilation);
    if (oh < 1 || ow < 1) throw new ShapeError(path, `input ${h}x${w} is too small for a ${kh}x${kw} stride-${stride} conv`);
    const weight = this.param(`${path}.weight`, [o.out, c / groups, kh, kw], 'weight');
    const params = [weight];
    if (o.bias) params.push(this.param(`${path}.bias`, [o.out], 'bias'));
    return this.add('Conv', path, [x], params, { kernel_shape: [kh, kw], strides: [stride, stride], pads, dilations: [dilation, dilation], group: groups }, [
      [n, o.out, oh, ow],
    ])[0]!;
  }

  batchNorm(x: string, path: string, eps = 1e-5): string {
    const s = this.shape(x);
    const c = s[1] as number;
    const params = [
      this.param(`${path}.weight`, [c], 'bn_weight'),
      this.param(`${path}.bias`, [c], 'bn_bias'),
      this.param(`${path}.running_mean`, [c], 'bn_mean'),
      this.param(`${path}.running_var`, [c], 'bn_var'),
    ];
    return this.add('BatchNormalization', path, [x], params, { epsilon: eps }, [s])[0]!;
  }

  private unary(op: 'Relu' | 'Sigmoid' | 'SiLU', x: string, path: string): string {
    return this.add(op, path, [x], [], {}, [this.shape(x)])[0]!;
  }
  relu(x: string, path = ''): string {
    return this.unary('Relu', x, path);
  }
  sigmoid(x: string, path = ''): string {
    return this.unary('Sigmoid', x, path);
  }
  silu(x: string, path = ''): string {
    return this.unary('SiLU', x, path);
  }

  /** x · relu6(x + 3) / 6 (PyTorch nn.Hardswish; ONNX HardSwish, opset 14). */
  hardSwish(x: string, path = ''): string {
    return this.add('HardSwish', path, [x], [], {}, [this.shape(x)])[0]!;
  }
  /** clip(alpha·x + 0.5, 0, 1): PyTorch nn.Hardsigmoid with the default alpha 1/6; PaddleClas' SE uses 0.2. */
  hardSigmoid(x: string, path = '', alpha = 1 / 6): string {
    return this.add('HardSigmoid', path, [x], [], { alpha, beta: 0.5 }, [this.shape(x)])[0]!;
  }

  /**
   * Stochastic depth (timm DropPath): in a training graph each sample's branch is kept with probability
   * 1 − rate and scaled by 1 / (1 − rate); everywhere else it is the identity. A rate of 0 adds no node.
   */
  dropPath(x: string, rate: number, path = ''): string {
    if (!(rate > 0)) return x;
    if (rate >= 1) throw new ShapeError(path, `drop path rate must be in [0, 1), got ${rate}`);
    return this.add('DropPath', path, [x], [], { rate }, [this.shape(x)])[0]!;
  }
  /** Dropout (elementwise, inverted scaling) in training graphs; the identity elsewhere. A rate of 0 adds no node. */
  dropout(x: string, rate: number, path = ''): string {
    if (!(rate > 0)) return x;
    if (rate >= 1) throw new ShapeError(path, `dropout rate must be in [0, 1), got ${rate}`);
    return this.add('Dropout', path, [x], [], { rate }, [this.shape(x)])[0]!;
  }

  /** Elementwise Add/Mul with NumPy broadcasting over equal-rank shapes. */
  private binary(op: 'Add' | 'Mul', a: string, b: string, path: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    if (sa.length !== sb.length) throw new ShapeError(path, `${op} of ranks ${sa.length} and ${sb.length}`);
    const out = sa.map((d, i) => {
      const e = sb[i]!;
      if (d === e || e === 1) return d;
      if (d === 1) return e;
      throw new ShapeError(path, `${op} of [${sa.join(', ')}] and [${sb.join(', ')}] does not broadcast`);
    });
    return this.add(op, path, [a, b], [], {}, [out])[0]!;
  }
  addTensors(a: string, b: string, path = ''): string {
    return this.binary('Add', a, b, path);
  }
  mul(a: string, b: string, path = ''): string {
    return this.binary('Mul', a, b, path);
  }

  private pool(op: 'MaxPool' | 'AveragePool', x: string, path: string, o: PoolOptions): string {
    const { n, c, h, w } = this.spatial(path, x);
    const pads = quad(o.pad ?? 0);
    const ceil = o.ceil ?? false;
    if (ceil && pads.some((p) => p > 0)) {
      // ONNX and PyTorch disagree on the last window in ceil mode with padding; no seed model needs it.
      throw new ShapeError(path, 'ceil-mode pooling with padding is not supported');
    }
    const oh = windowOutput(h, o.kernel, o.stride, pads[0], pads[2], 1, ceil);
    const ow = windowOutput(w, o.kernel, o.stride, pads[1], pads[3], 1, ceil);
    if (oh < 1 || ow < 1) throw new ShapeError(path, `input ${h}x${w} is too small for a ${o.kernel}x${o.kernel} stride-${o.stride} pool`);
    const attrs: Record<string, AttrValue> = { kernel_shape: [o.kernel, o.kernel], strides: [o.stride, o.stride], pads, ceil_mode: ceil ? 1 : 0 };
    if (op === 'AveragePool') attrs['count_include_pad'] = o.countIncludePad === false ? 0 : 1;
    return this.add(op, path, [x], [], attrs, [[n, c, oh, ow]])[0]!;
  }
  maxPool(x: string, path: string, o: PoolOptions): string {
    return this.pool('MaxPool', x, path, o);
  }
  avgPool(x: string, path: string, o: PoolOptions): string {
    return this.pool('AveragePool', x, path, o);
  }

  globalAvgPool(x: string, path = ''): string {
    const { n, c } = this.spatial(path, x);
    return this.add('GlobalAveragePool', path, [x], [], {}, [[n, c, 1, 1]])[0]!;
  }

  flatten(x: string, path = ''): string {
    const s = this.shape(x);
    const rest = s.slice(1) as number[];
    return this.add('Flatten', path, [x], [], { axis: 1 }, [[s[0]!, numel(rest)]])[0]!;
  }

  concat(xs: string[], axis: number, path = ''): string {
    const shapes = xs.map((x) => this.shape(x));
    const first = shapes[0]!;
    let total = 0;
    for (const s of shapes) {
      s.forEach((d, i) => {
        if (i !== axis && d !== first[i]) throw new ShapeError(path, `Concat of mismatched shapes [${first.join(', ')}] and [${s.join(', ')}]`);
      });
      total += s[axis] as number;
    }
    const out = [...first];
    out[axis] = total;
    return this.add('Concat', path, xs, [], { axis }, [out])[0]!;
  }

  split(x: string, sizes: number[], axis: number, path = ''): string[] {
    const s = this.shape(x);
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (sum !== s[axis]) throw new ShapeError(path, `Split sizes ${sizes.join('+')} do not add up to ${s[axis]}`);
    return this.add(
      'Split',
      path,
      [x],
      [],
      { axis, split: sizes },
      sizes.map((k) => {
        const o = [...s];
        o[axis] = k;
        return o;
      }),
    );
  }

  /** Reshape keeping the batch dimension symbolic: `shape` gives the dims after the batch. */
  reshape(x: string, shape: number[], path = ''): string {
    const s = this.shape(x);
    if (numel(s.slice(1) as number[]) !== numel(shape)) throw new ShapeError(path, `cannot reshape [${s.join(', ')}] to [N, ${shape.join(', ')}]`);
    return this.add('Reshape', path, [x], [], { shape: [0, ...shape] }, [[s[0]!, ...shape]])[0]!;
  }

  transpose(x: string, perm: number[], path = ''): string {
    const s = this.shape(x);
    return this.add('Transpose', path, [x], [], { perm }, [perm.map((p) => s[p]!)])[0]!;
  }

  softmax(x: string, axis: number, path = ''): string {
    return this.add('Softmax', path, [x], [], { axis }, [this.shape(x)])[0]!;
  }

  reduceSum(x: string, axis: number, path = ''): string {
    const s = [...this.shape(x)];
    s[axis] = 1;
    return this.add('ReduceSum', path, [x], [], { axes: [axis], keepdims: 1 }, [s])[0]!;
  }

  /** Zero padding [top, left, bottom, right] on a 4-D tensor (TF "SAME" emulation). */
  pad(x: string, pads: [number, number, number, number], path = ''): string {
    const { n, c, h, w } = this.spatial(path, x);
    return this.add('Pad', path, [x], [], { pads }, [[n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]]])[0]!;
  }

  /** Fully connected layer, PyTorch layout: weight [out, in], bias [out]. */
  linear(x: string, path: string, out: number): string {
    const s = this.shape(x);
    if (s.length !== 2) throw new ShapeError(path, `Linear expects [N, C], got [${s.join(', ')}]`);
    const weight = this.param(`${path}.weight`, [out, s[1] as number], 'weight');
    const bias = this.param(`${path}.bias`, [out], 'bias');
    return this.add('Gemm', path, [x], [weight, bias], { transB: 1 }, [[s[0]!, out]])[0]!;
  }

  // ------------------------------------------------------------------ transformer / ConvNeXt pieces

  /** LayerNorm over the last axis (ONNX LayerNormalization, axis −1); timm/PyTorch keys `path.weight`, `path.bias`. */
  layerNorm(x: string, path: string, eps = 1e-6): string {
    const s = this.shape(x);
    const c = s[s.length - 1] as number;
    const params = [this.param(`${path}.weight`, [c], 'norm_weight'), this.param(`${path}.bias`, [c], 'norm_bias')];
    return this.add('LayerNormalization', path, [x], params, { axis: -1, epsilon: eps }, [s])[0]!;
  }

  /** timm's LayerNorm2d: LayerNorm over the channels of an NCHW tensor (permute to NHWC and back). */
  layerNorm2d(x: string, path: string, eps = 1e-6): string {
    this.spatial(path, x);
    const y = this.layerNorm(this.transpose(x, [0, 2, 3, 1], path), path, eps);
    return this.transpose(y, [0, 3, 1, 2], path);
  }

  /** GELU: exact (erf, PyTorch's default) or the tanh approximation. */
  gelu(x: string, path = '', approximate: 'none' | 'tanh' = 'none'): string {
    return this.add('Gelu', path, [x], [], { tanh: approximate === 'tanh' ? 1 : 0 }, [this.shape(x)])[0]!;
  }

  /** Batched matrix product of two values of equal rank: [..., M, K] @ [..., K, P]. */
  matmul(a: string, b: string, path = ''): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    const r = sa.length;
    if (r < 3 || sb.length !== r) throw new ShapeError(path, `MatMul of [${sa.join(', ')}] and [${sb.join(', ')}]: equal ranks ≥ 3 expected`);
    if (sa.slice(0, r - 2).some((d, i) => d !== sb[i]) || sa[r - 1] !== sb[r - 2]) throw new ShapeError(path, `MatMul of [${sa.join(', ')}] and [${sb.join(', ')}] does not fit`);
    return this.add('MatMul', path, [a, b], [], {}, [[...sa.slice(0, r - 1), sb[r - 1]!]])[0]!;
  }

  /** nn.Linear on the last axis of a tensor of any rank ≥ 2 (weight [out, in], bias [out]). */
  dense(x: string, path: string, out: number, bias = true): string {
    const s = this.shape(x);
    if (s.length < 2) throw new ShapeError(path, `Linear expects rank ≥ 2, got [${s.join(', ')}]`);
    const params = [this.param(`${path}.weight`, [out, s[s.length - 1] as number], 'weight')];
    if (bias) params.push(this.param(`${path}.bias`, [out], 'bias'));
    return this.add('Linear', path, [x], params, {}, [[...s.slice(0, -1), out]])[0]!;
  }

  /**
   * A parameter used as a value, viewed as `view` (same element count): a position embedding, a layer scale
   * reshaped to [1, C, 1, 1], a token. Role `embed`, with its from-scratch init.
   */
  parameter(name: string, shape: number[], view: number[], init: Param['init']): string {
    if (numel(shape) !== numel(view)) throw new ShapeError(name, `cannot view [${shape.join(', ')}] as [${view.join(', ')}]`);
    const p = this.param(name, shape, 'embed');
    this.params.get(p)!.init = init;
    return this.add('Parameter', name, [], [p], { shape: view }, [view])[0]!;
  }

  /** Broadcast a [1, ...] value to the batch of `like` ([N, ...]): a class token for every sample. */
  expandBatch(v: string, like: string, path = ''): string {
    const s = this.shape(v);
    if (s[0] !== 1) throw new ShapeError(path, `expandBatch needs a leading 1, got [${s.join(', ')}]`);
    return this.add('ExpandBatch', path, [v, like], [], {}, [[this.shape(like)[0]!, ...s.slice(1)]])[0]!;
  }

  /** Multiply by a constant (attention's 1/√d, the mean of two heads). */
  scale(x: string, alpha: number, path = ''): string {
    return this.add('Scale', path, [x], [], { alpha }, [this.shape(x)])[0]!;
  }

  /**
   * ConvNeXt V2's Global Response Norm (timm GlobalResponseNorm): per-channel L2 norm over the spatial axes,
   * divided by its mean over channels + eps; y = x + bias + weight · x · that. `channelAxis` 3 (NHWC) or 1 (NCHW).
   */
  grn(x: string, path: string, channelAxis: 1 | 3, eps = 1e-6): string {
    const s = this.shape(x);
    if (s.length !== 4) throw new ShapeError(path, `GRN expects a 4-D input, got [${s.join(', ')}]`);
    const c = s[channelAxis] as number;
    const params = [this.param(`${path}.weight`, [c], 'embed'), this.param(`${path}.bias`, [c], 'embed')];
    for (const p of params) this.params.get(p)!.init = { fill: 0 };
    return this.add('GRN', path, [x], params, { channel_axis: channelAxis, epsilon: eps }, [s])[0]!;
  }

  /** Mark a stage output for feature extraction. */
  markFeature(value: string, module: string): string {
    this.featurePoints.push({ value, module });
    return value;
  }

  /**
   * A copy computing only `outputs` (renamed to `names`): unused nodes and their parameters are dropped.
   * Parameter definitions are shared, so weights for the full graph serve the copy.
   */
  prune(outputs: string[], names: string[]): Graph {
    const g = new Graph();
    const need = new Set(outputs);
    const keep: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (n.outputs.some((o) => need.has(o))) {
        keep.push(n);
        for (const x of n.inputs) need.add(x);
      }
    }
    keep.reverse();
    const rename = new Map(outputs.map((o, i) => [o, names[i]!]));
    const r = (v: string) => rename.get(v) ?? v;
    for (const i of this.inputs) g.input(i, this.shape(i));
    for (const n of keep) {
      g.nodes.push({ ...n, inputs: n.inputs.map(r), outputs: n.outputs.map(r) });
      for (const o of n.outputs) g.shapes.set(r(o), this.shape(o));
      for (const p of n.params) g.params.set(p, this.params.get(p)!);
    }
    g.outputs.push(...names);
    return g;
  }

  /** Parameters in definition order (the order a state_dict lists them). */
  paramList(): Param[] {
    return [...this.params.values()];
  }
}
