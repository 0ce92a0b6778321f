/**
 * The public model object: `createModel(name)` gives the architecture as a graph (built for one input size),
 * its pretrained config, parameter list, counts, ONNX bytes and an ONNX Runtime session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { countGraph, type Counts } from './ir/count.js';
import { ShapeError, type Graph } from './ir/graph.js';
import { buildOnnx, concatChunks, needsExternalData, type ExportOptions, type WeightMap } from './onnx/export.js';
import { writeOnnx } from './node/files.js';
import { resolveModel } from './models/index.js';
import type { ModelEntry, PretrainedCfg } from './models/types.js';
import { createSession, runSession, type Session, type SessionOptions } from './runtime/session.js';
import type { KeyScheme } from './models/types.js';
import { applyWeights } from './weights/apply.js';
import { fitCheckpoint } from './weights/fit.js';
import { checkpointHeadWidth, readCheckpointFor } from './node/checkpoint.js';
import { runConfigFor, runWeightsFile, type RunConfig } from './node/run-config.js';
import { fetchWeights, type FetchOptions } from './node/hub.js';
import { initWeights } from './weights/init.js';
import { loadSafetensors, saveSafetensors } from './node/safetensors.js';
import { Trainer, type TrainerOptions } from './train/trainer.js';
import { InputError, type HostTensor } from './weights/tensor.js';

export interface CreateOptions {
  /** Load the registry's pretrained weights (cache, else download): createModel then returns a Promise. */
  pretrained?: boolean;
  /** Download progress for `pretrained` (the CLI draws a bar on stderr). */
  onProgress?: FetchOptions['onProgress'];
  /** Classifier width (default: the pretrained config's, 1000). */
  numClasses?: number;
  inChans?: number;
  /** Spatial input size; default the pretrained config's input size. */
  inputSize?: number | [number, number];
  /** Return multi-scale feature maps instead of logits (timm's features_only). */
  featuresOnly?: boolean;
  /** Which feature levels (default all: one per reduction 2, 4, 8, 16, 32). */
  outIndices?: number[];
  /**
   * Load this checkpoint, or the best weights of this `tsimm train` run directory. The model takes the run's
   * classes, class names, channels, input size and preprocessing (its config.json, as `tsimm predict` does), else
   * the checkpoint's classifier width. Options given here win.
   */
  weights?: string;
  /** Stochastic depth rate (timm's drop_path_rate, `--drop-path`); active only in training graphs. */
  dropPathRate?: number;
  /** Dropout before the classifier (timm's drop_rate, `--drop`); active only in training graphs. */
  dropRate?: number;
}

/** A feature level: timm's feature_info entry. */
export interface FeatureInfo {
  index: number;
  module: string;
  channels: number;
  reduction: number;
}

export interface ParamInfo {
  name: string;
  shape: number[];
}

/** Find the smallest square input a builder accepts (for the error message of a too-small size). */
function smallestSize(entry: ModelEntry, numClasses: number, inChans: number): number | undefined {
  for (let s = 1; s <= 1024; s++) {
    try {
      entry.build({ numClasses, inChans, inputSize: [s, s] });
      return s;
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
    }
  }
  return undefined;
}

/** features_only's default out_indices: every level (the identity marks the default). */
const ALL_LEVELS = [0, 1, 2, 3, 4];

export class Model {
  /** The graph that runs and is exported (the full one, or the feature levels only). */
  readonly graph: Graph;
  /** The full architecture: every parameter a checkpoint holds. */
  readonly fullGraph: Graph;
  readonly inputSize: [number, number];
  /** The feature levels this model returns: every level, or the `outIndices` ones of a features-only model. */
  readonly featureInfo: FeatureInfo[];
  /** Every feature level of the architecture (what `outIndices` index). */
  readonly allFeatureInfo: FeatureInfo[];
  weights?: WeightMap;
  /** The class names of a fine-tuned run (createModel with `weights`); classify prints them. */
  classNames?: string[];
  /**
   * Whether loadCheckpoint may give a checkpoint of another class count a fresh classifier: only when the model
   * was created with an explicit `numClasses` other than the pretrained config's (fine-tuning, timm's rule).
   */
  newHeadAllowed = false;

  constructor(
    readonly entry: ModelEntry,
    readonly cfg: PretrainedCfg,
    readonly numClasses: number,
    readonly inChans: number,
    inputSize: [number, number],
    readonly outIndices?: number[],
    /** Training-only regularization (DropPath / Dropout nodes; the identity in inference and export). */
    readonly regularization: { dropPathRate?: number; dropRate?: number } = {},
  ) {
    this.inputSize = inputSize;
    this.fullGraph = this.graphAt(inputSize);
    this.allFeatureInfo = featureLevels(this.fullGraph);
    // The default is every level the architecture has (five for most CNNs, four for ConvNeXt).
    if (outIndices === ALL_LEVELS) outIndices = this.outIndices = this.allFeatureInfo.map((f) => f.index);
    if (!outIndices) {
      this.graph = this.fullGraph;
      this.featureInfo = this.allFeatureInfo;
    } else {
      const bad = outIndices.filter((i) => !this.allFeatureInfo[i]);
      if (bad.length) throw new InputError(`${this.name} has feature levels 0..${this.allFeatureInfo.length - 1}, not ${bad.join(', ')}`);
      const levels = outIndices.map((i) => this.allFeatureInfo[i]!);
      this.featureInfo = levels;
      const values = levels.map((l) => this.fullGraph.featurePoints.find((f) => f.module === l.module)!.value);
      this.graph = this.fullGraph.prune(values, outIndices.map((i) => `feature${i}`));
    }
  }

  get name(): string {
    return this.entry.name;
  }

  /** The graph at another input size (same parameters); errors name the layer and the smallest size that works. */
  graphAt(size: [number, number]): Graph {
    try {
      return this.entry.build({ numClasses: this.numClasses, inChans: this.inChans, inputSize: size, ...this.regularization });
    } catch (e) {
      if (!(e instanceof ShapeError)) throw e;
      const min = smallestSize(this.entry, this.numClasses, this.inChans);
      throw new InputError(
        `${this.name} cannot take a ${size[0]}x${size[1]} input: ${e.message}${min ? `; the smallest size that works is ${min}x${min}` : ''}`,
      );
    }
  }

  /** The weights as a state dict (timm keys, PyTorch layouts), e.g. to save as safetensors. */
  stateDict(): Map<string, HostTensor> {
    const w = this.requireWeights();
    return new Map(this.parameters().map((p) => [p.name, { shape: p.shape, data: w.get(p.name)! }]));
  }

  /** Every parameter of the architecture (checkpoint keys and shapes). */
  parameters(): ParamInfo[] {
    return this.fullGraph.paramList().map((p) => ({ name: p.name, shape: p.shape }));
  }

  counts(size?: number | [number, number]): Counts {
    if (size === undefined) return countGraph(this.graph);
    const g = this.graphAt(typeof size === 'number' ? [size, size] : size);
    if (!this.outIndices) return countGraph(g);
    const values = this.outIndices.map((i) => g.featurePoints.find((f) => f.module === this.allFeatureInfo[i]!.module)!.value);
    return countGraph(g.prune(values, this.outIndices.map((i) => `feature${i}`)));
  }

  /** Use these tensors (timm state_dict names); every parameter must be present with its exact shape. */
  setWeights(tensors: Map<string, HostTensor>, what = 'the weights'): this {
    this.weights = applyWeights(this.fullGraph, tensors, what);
    return this;
  }

  loadSafetensors(path: string): this {
    return this.setWeights(loadSafetensors(path), path);
  }

  /**
   * Load any supported checkpoint (safetensors, PyTorch .pth, PaddleClas .pdparams), mapping its keys with
   * `scheme` (default: detected from the keys). A classifier of another width than `numClasses` is an error naming
   * numClasses, unless the model was created with an explicit other `numClasses` (fine-tuning: a fresh classifier,
   * as timm does). A 3-channel first conv is adapted to `inChans`. Synchronous, like loadSafetensors.
   */
  loadCheckpoint(path: string, scheme?: KeyScheme): this {
    const target = { name: this.name, graph: this.fullGraph, entry: this.entry, cfg: this.cfg, numClasses: this.numClasses, inChans: this.inChans, newHeadAllowed: this.newHeadAllowed };
    this.weights = fitCheckpoint(target, readCheckpointFor(this.fullGraph, path, scheme), path);
    return this;
  }

  /** The registry's pretrained weights for this config: from the cache, else downloaded into it. */
  async loadPretrained(o: FetchOptions = {}): Promise<this> {
    const source = this.cfg.weights;
    if (!source) throw new InputError(`${this.name}.${this.cfg.tag} has no pretrained weights (timm publishes none); load a checkpoint file instead`);
    const path = await fetchWeights(source, o);
    // Hub files are timm-keyed safetensors; direct URLs carry their source's key scheme.
    return this.loadCheckpoint(path, source.hfHubId ? 'timm' : source.keys);
  }

  /**
   * Deterministic He-uniform weights and identity BatchNorm: training from scratch, or export/bench without a
   * checkpoint. The only way to random weights: a model never runs on them unasked.
   */
  initWeights(seed = 0): this {
    this.weights = initWeights(this.fullGraph, seed);
    return this;
  }

  private requireWeights(): WeightMap {
    if (!this.weights) {
      throw new InputError(
        `${this.name} has no weights: load them (model.loadSafetensors(FILE), model.loadCheckpoint(FILE), or createModel(name, { pretrained: true })), or call model.initWeights() to use random weights on purpose`,
      );
    }
    return this.weights;
  }

  metadata(): Record<string, string> {
    return {
      'tsimm.model': this.name,
      'tsimm.pretrained_cfg': JSON.stringify({ ...this.cfg, numClasses: this.numClasses }),
    };
  }

  /** ONNX bytes (inline weights; throws for models over 2 GB — use exportOnnx, which writes external data). */
  toOnnx(opts: ExportOptions = {}): Uint8Array {
    const m = buildOnnx(this.graph, this.requireWeights(), { metadata: this.metadata(), ...opts });
    if (m.external) throw new InputError(`${this.name} has over 2 GB of weights; export it to a file (external data) instead of bytes`);
    return concatChunks(m.chunks, m.byteLength);
  }

  /** Write `path` (plus `path.data` for weights over 2 GB, or when `external` is set). */
  exportOnnx(path: string, opts: ExportOptions & { external?: boolean } = {}): { bytes: number; externalBytes: number } {
    const m = writeOnnx(path, this.graph, this.requireWeights(), { metadata: this.metadata(), ...opts });
    return { bytes: m.byteLength, externalBytes: m.external?.byteLength ?? 0 };
  }

  /**
   * An ONNX Runtime session on this model. The graph goes through a temporary ONNX file with external data,
   * which ONNX Runtime loads with fewer copies than model bytes: for ResNet-50, peak RSS 662 → 465 MB and
   * session creation 240 → 100 ms (bench/load.ts). Folded weights stream to that file one tensor at a time.
   * With `releaseWeights` (one-shot use, as the CLI's infer/predict/eval), the model lets go of its weights once
   * they are in the file and before ONNX Runtime loads it, so the peak is about ONNX Runtime's alone; the model
   * has no weights afterwards. Where no temporary file can be written, models under 2 GB fall back to bytes.
   * `device` (cpu, webgpu, cuda) picks where it runs; `float16` makes it an fp16 graph with fp32 inputs and outputs.
   */
  async createSession(opts: SessionOptions & ExportOptions & { releaseWeights?: boolean } = {}): Promise<Session> {
    let dir: string | undefined;
    try {
      dir = mkdtempSync(join(tmpdir(), 'tsimm-'));
      const path = join(dir, 'model.onnx');
      this.writeSessionFile(path, opts);
      if (opts.releaseWeights) {
        this.weights = undefined;
        await collectGarbage();
      }
      return await createSession(path, opts);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!['ENOSPC', 'EACCES', 'EROFS', 'EPERM'].includes(code ?? '') || needsExternalData(this.graph, opts.float16)) throw e;
      const m = buildOnnx(this.graph, this.requireWeights(), { metadata: this.metadata(), ...opts });
      return createSession(concatChunks(m.chunks, m.byteLength), opts);
    } finally {
      // ONNX Runtime has read (or mapped) the files by now; removal is best effort.
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Not inlined into createSession: its frame (and the references it held) is gone when that collects garbage. */
  private writeSessionFile(path: string, opts: ExportOptions): void {
    writeOnnx(path, this.graph, this.requireWeights(), { ...opts, external: true });
  }

  /** Feature maps of a features-only model, by level: [N, C, H/r, W/r] each. */
  async runFeatures(input: HostTensor, session?: Session): Promise<HostTensor[]> {
    if (!this.outIndices) throw new InputError(`${this.name} was not created with featuresOnly`);
    const own = !session;
    const sess = session ?? (await this.createSession());
    try {
      const out = await runSession(sess, input);
      return this.outIndices.map((i) => out[`feature${i}`]!);
    } finally {
      if (own) await sess.release();
    }
  }

  /** Run a float32 NCHW batch; returns `logits` and `features` (pooled pre-logits). */
  async run(input: HostTensor, session?: Session): Promise<{ logits: HostTensor; features: HostTensor }> {
    if (this.outIndices) throw new InputError(`${this.name} was created with featuresOnly: use runFeatures`);
    const [c, h, w] = [this.inChans, ...this.inputSize];
    const s = input.shape;
    if (s.length !== 4 || s[1] !== c || s[2] !== h || s[3] !== w) {
      throw new InputError(`${this.name} expects input [N, ${c}, ${h}, ${w}], got [${s.join(', ')}]; resize the input or create the model with that size (--size)`);
    }
    const own = !session;
    const sess = session ?? (await this.createSession());
    try {
      const out = await runSession(sess, input, ['logits', 'features']);
      return { logits: out['logits']!, features: out['features']! };
    } finally {
      if (own) await sess.release();
    }
  }

  /**
   * A trainer on this model's weights, which it updates in place: after training, `saveSafetensors`, `run` and
   * `exportOnnx` see the trained values. The batch size is free; the spatial size is the model's `inputSize`.
   */
  trainer(o: TrainerOptions = {}): Trainer {
    if (this.outIndices) throw new InputError(`${this.name} was created with featuresOnly: train the full model (features-only training is not supported yet)`);
    return new Trainer(this.fullGraph, this.requireWeights(), o);
  }

  /** Save the weights as float32 safetensors with timm's keys (loadable by timm and by `loadCheckpoint`). */
  saveSafetensors(path: string): void {
    saveSafetensors(path, this.stateDict(), { format: 'pt' });
  }
}

let gc: (() => void) | undefined;
/**
 * A full collection, so released weights are gone before ONNX Runtime allocates (its memory is invisible to V8).
 * Run from a fresh task: a collection on the stack that passed the weights along can still see them.
 */
function collectGarbage(): Promise<void> {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  return new Promise((resolve) => setImmediate(() => (gc!(), resolve())));
}

/** One level per reduction (the last stage output at each), like timm's feature_info. */
function featureLevels(g: Graph): FeatureInfo[] {
  const inH = g.shape(g.inputs[0]!)[2] as number;
  const byReduction = new Map<number, { module: string; channels: number }>();
  for (const f of g.featurePoints) {
    const s = g.shape(f.value);
    byReduction.set(Math.round(inH / (s[2] as number)), { module: f.module, channels: s[1] as number });
  }
  return [...byReduction.entries()].sort((a, b) => a[0] - b[0]).map(([reduction, v], index) => ({ index, reduction, ...v }));
}

export function createModel(name: string, o: CreateOptions & { pretrained: true }): Promise<Model>;
export function createModel(name: string, o?: CreateOptions & { pretrained?: false }): Model;
export function createModel(name: string, o: CreateOptions): Model | Promise<Model>;
export function createModel(name: string, o: CreateOptions = {}): Model | Promise<Model> {
  if (o.weights !== undefined) {
    if (o.pretrained) throw new InputError('give either pretrained: true or weights: FILE, not both');
    return fromRun(name, o, o.weights);
  }
  const model = buildModel(name, o);
  return o.pretrained ? model.loadPretrained({ onProgress: o.onProgress }) : model;
}

function buildModel(name: string, o: CreateOptions, run?: RunConfig): Model {
  const resolved = resolveModel(name);
  const { entry } = resolved;
  let { cfg } = resolved;
  const size = o.inputSize ?? [cfg.inputSize[1], cfg.inputSize[2]];
  const inputSize: [number, number] = typeof size === 'number' ? [size, size] : size;
  if (!inputSize.every((d) => Number.isInteger(d) && d > 0)) throw new InputError(`input size must be positive integers, got ${inputSize.join('x')}`);
  const inChans = o.inChans ?? 3;
  const outIndices = o.featuresOnly ? (o.outIndices ?? ALL_LEVELS) : undefined;
  // cfg describes this model: its real input (the pretrained size's resize_short and test size no longer apply).
  if (inputSize[0] !== cfg.inputSize[1] || inputSize[1] !== cfg.inputSize[2] || inChans !== cfg.inputSize[0]) {
    const { testInputSize: _t, resizeShort: _r, ...rest } = cfg;
    cfg = { ...rest, inputSize: [inChans, inputSize[0], inputSize[1]] };
  }
  const p = run?.preprocess;
  if (p) cfg = { ...cfg, cropPct: p.cropPct, cropMode: p.cropMode, interpolation: p.interpolation, resizeBackend: p.backend, mean: p.mean, std: p.std, ...(p.resizeShort ? { resizeShort: p.resizeShort } : {}) };
  for (const [k, v] of [['dropPathRate', o.dropPathRate], ['dropRate', o.dropRate]] as const) {
    if (v !== undefined && !(v >= 0 && v < 1)) throw new InputError(`${k} must be in [0, 1), got ${v}`);
  }
  const regularization = { ...(o.dropPathRate ? { dropPathRate: o.dropPathRate } : {}), ...(o.dropRate ? { dropRate: o.dropRate } : {}) };
  const model = new Model(entry, cfg, o.numClasses ?? cfg.numClasses, inChans, inputSize, outIndices, regularization);
  model.newHeadAllowed = o.numClasses !== undefined && o.numClasses !== resolved.cfg.numClasses;
  if (run?.classNames) model.classNames = run.classNames;
  return model;
}

/** createModel with `weights`: a checkpoint, or a run directory's best (else last) weights and its config.json. */
function fromRun(name: string, o: CreateOptions, path: string): Model {
  const file = runWeightsFile(path);
  const run = runConfigFor(file);
  if (run && resolveModel(run.model).entry.name !== resolveModel(name).entry.name) throw new InputError(`${file} was trained as ${run.model} (its config.json says so), not ${name}`);
  let numClasses = o.numClasses ?? run?.numClasses;
  if (numClasses === undefined) {
    const probe = buildModel(name, { inputSize: o.inputSize ?? run?.size, inChans: o.inChans ?? run?.inChans });
    numClasses = checkpointHeadWidth(probe.fullGraph, probe.cfg.classifier, file);
  }
  const model = buildModel(name, { ...o, numClasses, inChans: o.inChans ?? run?.inChans, inputSize: o.inputSize ?? run?.size }, run);
  return model.loadCheckpoint(file);
}
