/**
 * `model.trainer(...)`: fine-tune or train a zoo model on onnxruntime-node. The model's graph is differentiated
 * (src/train/autodiff.ts) once; every step feeds the trainable weights and reads back the loss, logits and
 * gradients; the update happens in TypeScript on the model's own weights, so `model.saveSafetensors()` or a new
 * inference session sees the trained values.
 *
 * Freezing follows timm's `freeze()`: a frozen module's parameters get no gradient and its BatchNorms use their
 * running statistics (FrozenBatchNorm2d), so the backward pass stops below the lowest trainable layer.
 */
import ort from 'onnxruntime-node';
import type { Graph } from '../ir/graph.js';
import { sessionOptions } from '../runtime/session.js';
import type { WeightMap } from '../onnx/export.js';
import type { HostTensor } from '../weights/tensor.js';
import type { TrainGraph } from './autodiff.js';
import { ortRun, TrainEngine, type Feed, type ForwardBackward, type StepResult, type Targets } from './engine.js';
import { trainGraphFor, type TrainerOptions } from './plan.js';
import { NCHWC, nchwcConv } from './nchwc.js';
import { OnnxBuilder } from './onnx-builder.js';

// The training plan (options, freezing, the training graph) is runtime-free: the page's trainer uses it too.
export { topModules, trainablePlan, trainGraphFor, type DistillOptions, type TrainerOptions } from './plan.js';

const feed = (t: HostTensor): Feed => ({ data: t.data, dims: t.shape });

export interface TrainStep extends Omit<StepResult, 'logits'> {
  logits: HostTensor;
}

/**
 * ONNX Runtime's NCHWc block size on this CPU (8 with AVX2, 16 with AVX-512), or 0 where its blocked ops are
 * missing or do not agree with a standard Conv: a ReorderInput of 4 channels pads them to one block, then one
 * conv of each blocked form (src/train/nchwc.ts) is checked against the standard Conv. Once per process.
 */
let blockProbe: Promise<number> | undefined;
export function nchwcBlock(): Promise<number> {
  blockProbe ??= (async () => {
    try {
      const p = new OnnxBuilder();
      p.input('x', [1, 4, 1, 1]);
      p.opIn(NCHWC, 'ReorderInput', ['x'], {}, '', ['y']);
      p.output('y', [1, 'C', 1, 1]);
      const s = await ort.InferenceSession.create(p.encode(), { logSeverityLevel: 3, intraOpNumThreads: 1 });
      const r = await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
      await s.release();
      const block = Number(r['y']!.dims[1]);
      if (block < 8 || block % 4 !== 0) return 0;
      return (await nchwcAgrees(block)) ? block : 0;
    } catch {
      return 0;
    }
  })();
  return blockProbe;
}

/** One conv per blocked form on small random data, blocked against standard, within float rounding. */
async function nchwcAgrees(block: number): Promise<boolean> {
  const b = new OnnxBuilder();
  const c = 2 * block;
  const cases = [
    { inCh: c, outCh: c, group: 1, kh: 3, kw: 3, stride: 1 },
    { inCh: 3, outCh: c, group: 1, kh: 3, kw: 3, stride: 2 },
    { inCh: c, outCh: c, group: c, kh: 5, kw: 5, stride: 1 },
  ];
  const feeds: Record<string, ort.Tensor> = {};
  const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + n) * 0.5);
  cases.forEach((k, i) => {
    const x = b.input(`x${i}`, [2, k.inCh, 7, 7]);
    const w = b.input(`w${i}`, [k.outCh, k.inCh / k.group, k.kh, k.kw]);
    feeds[x] = new ort.Tensor('float32', rand(2 * k.inCh * 49), [2, k.inCh, 7, 7]);
    feeds[w] = new ort.Tensor('float32', rand(k.outCh * (k.inCh / k.group) * k.kh * k.kw), [k.outCh, k.inCh / k.group, k.kh, k.kw]);
    const p = (k.kh - 1) / 2;
    const attrs = { kernel_shape: [k.kh, k.kw], strides: [k.stride, k.stride], pads: [p, p, p, p], dilations: [1, 1], group: k.group };
    b.node('Conv', [x, w], attrs, '', [`ref${i}`]);
    if (!nchwcConv(b, { x, w, ...k, attrs, name: `c${i}`, outputs: [`got${i}`] }, block)) throw new Error('no blocked form');
    b.output(`ref${i}`, [2, k.outCh, 'H', 'W']);
    b.output(`got${i}`, [2, k.outCh, 'H', 'W']);
  });
  const s = await ort.InferenceSession.create(b.encode(), { logSeverityLevel: 3, intraOpNumThreads: 1 });
  const r = await s.run(feeds);
  await s.release();
  return cases.every((_, i) => {
    const [ref, got] = [r[`ref${i}`]!.data as Float32Array, r[`got${i}`]!.data as Float32Array];
    return ref.length === got.length && ref.every((v, j) => Math.abs(v - got[j]!) <= 1e-4 * (1 + Math.abs(v)));
  });
}

export class Trainer {
  graph: TrainGraph;
  readonly engine: TrainEngine;
  private session?: Promise<ort.InferenceSession>;

  constructor(
    readonly modelGraph: Graph,
    readonly weights: WeightMap,
    readonly options: TrainerOptions = {},
  ) {
    this.graph = trainGraphFor(modelGraph, weights, options);
    const run = ortRun(() => this.open(), (data, dims) => new ort.Tensor('float32', data, dims));
    this.engine = new TrainEngine(this.graph, weights, options, run, modelGraph.paramList());
  }

  /**
   * No memory pattern: with a symbolic batch ONNX Runtime plans the pattern from the first step and allocates it
   * beside the arena's first-step blocks, doubling peak RSS (resnet50d 224×16: 4.15 → 2.2 GB without; CPU ±5 %).
   */
  private open(): Promise<ort.InferenceSession> {
    this.session ??= this.create();
    return this.session;
  }

  /**
   * Convs whose weights train run on ORT's blocked kernels where the probe finds them (`nchwc: false` or
   * TSIMM_NCHWC=0: standard ops only); the graph is rebuilt with them, and any failure falls back to the plain one.
   */
  private async create(): Promise<ort.InferenceSession> {
    const opts: ort.InferenceSession.SessionOptions = {
      ...sessionOptions({ threads: this.options.threads, optimization: this.options.optimization, spinning: this.options.spin ?? false }),
      logSeverityLevel: 3,
      enableMemPattern: false,
    };
    const wanted = this.options.nchwc ?? process.env['TSIMM_NCHWC'] !== '0';
    const trainsConv = this.modelGraph.nodes.some((n) => n.op === 'Conv' && this.graph.paramInputs.includes(n.params[0]!));
    const block = wanted && trainsConv ? await nchwcBlock() : 0;
    if (block) {
      try {
        const blocked = trainGraphFor(this.modelGraph, this.weights, this.options, { nchwc: block, nchwcWeightGrad: process.env['TSIMM_NCHWC_DW'] !== '0' });
        const session = await ort.InferenceSession.create(blocked.bytes, opts);
        this.graph = blocked;
        this.nchwc = block;
        return session;
      } catch {
        // The plain graph below.
      }
    }
    return ort.InferenceSession.create(this.graph.bytes, opts);
  }

  /** The NCHWc block size the session's convs run with (0: standard ops), known once the first step has run. */
  nchwc = 0;

  get lr(): number {
    return this.engine.lr;
  }
  set lr(v: number) {
    this.engine.lr = v;
  }

  /** One training step on a float32 NCHW batch with class indices or soft targets [N, C]. */
  async step(batch: HostTensor, targets: Targets | HostTensor, o: { teacher?: HostTensor; maskKeys?: readonly number[] } = {}): Promise<TrainStep> {
    const r = await this.engine.step(feed(batch), toTargets(targets), o.teacher && feed(o.teacher), o.maskKeys);
    return { ...r, logits: { shape: [batch.shape[0]!, this.graph.numClasses], data: r.logits } };
  }

  /** Loss, logits, gradients and batch statistics without updating anything. */
  forwardBackward(batch: HostTensor, targets: Targets | HostTensor, o: { teacher?: HostTensor; maskKeys?: readonly number[] } = {}): Promise<ForwardBackward> {
    return this.engine.forwardBackward(feed(batch), toTargets(targets), o.teacher && feed(o.teacher), o.maskKeys);
  }

  async release(): Promise<void> {
    if (this.session) await (await this.session).release();
    this.session = undefined;
  }
}

function toTargets(t: Targets | HostTensor): Targets {
  const h = t as HostTensor;
  return h.shape && h.data instanceof Float32Array ? feed(h) : (t as Targets);
}
