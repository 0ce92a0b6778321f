/**
 * A zoo model in the page, without I/O: the registry entry, its pretrained config, the architecture's graph at
 * one input size, and its weights. Checkpoints are fitted by src/weights/fit.ts, Node's rule: a classifier of
 * another width is freshly initialised when numClasses asked for it, else refused; one that fits loads.
 */
import { countGraph } from '../src/ir/count.js';
import type { Graph } from '../src/ir/graph.js';
import { ShapeError } from '../src/ir/graph.js';
import { resolveModel } from '../src/models/index.js';
import type { KeyScheme, ModelEntry, PretrainedCfg } from '../src/models/types.js';
import type { WeightMap } from '../src/onnx/export.js';
import { resolvePreprocess, type PreprocessConfig } from '../src/data/transforms.js';
import { mapCheckpointFor } from '../src/weights/checkpoint.js';
import { fitCheckpoint } from '../src/weights/fit.js';
import { timmInit } from '../src/train/init.js';
import { initWeights } from '../src/weights/init.js';
import { InputError, type HostTensor } from '../src/weights/tensor.js';
import { TsimmError } from './errors.js';

export interface BuiltModel {
  entry: ModelEntry;
  cfg: PretrainedCfg;
  numClasses: number;
  /** numClasses was asked for and differs from the pretrained config's: a checkpoint's classifier is replaced. */
  newHeadAllowed: boolean;
  inputSize: [number, number];
  graph: Graph;
  weights?: WeightMap;
  preprocess: PreprocessConfig;
  /** 'uniform': Node's initWeights (deterministic He-uniform, for parity); 'timm': the family's timm init, to train from. */
  initRandom(seed: number, init?: 'uniform' | 'timm'): void;
  metadata(): Record<string, string>;
  /** Learnable parameters (timm's count: BatchNorm running statistics excluded). */
  paramCount(): number;
  stateDict(): Map<string, HostTensor>;
}

export function buildModel(name: string, o: { numClasses?: number; inputSize?: number | [number, number] } = {}): BuiltModel {
  const { entry, cfg } = resolveModel(name);
  const numClasses = o.numClasses ?? cfg.numClasses;
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new TsimmError('BAD_INPUT', `numClasses must be a positive integer, got ${numClasses}`);
  const size = o.inputSize ?? [cfg.inputSize[1], cfg.inputSize[2]];
  const inputSize: [number, number] = typeof size === 'number' ? [size, size] : size;
  let graph: Graph;
  try {
    graph = entry.build({ numClasses, inChans: 3, inputSize });
  } catch (e) {
    if (e instanceof ShapeError) throw new TsimmError('BAD_INPUT', `${entry.name} cannot take a ${inputSize[0]}x${inputSize[1]} input: ${e.message}; use a larger inputSize`);
    throw e;
  }
  const m: BuiltModel = {
    entry,
    cfg,
    numClasses,
    newHeadAllowed: o.numClasses !== undefined && o.numClasses !== cfg.numClasses,
    inputSize,
    graph,
    preprocess: resolvePreprocess(cfg, { size: inputSize }),
    initRandom(seed, init = 'uniform') {
      m.weights = init === 'timm' ? timmInit(graph, entry.family, seed) : initWeights(graph, seed);
    },
    metadata: () => ({ 'tsimm.model': entry.name, 'tsimm.pretrained_cfg': JSON.stringify({ ...cfg, numClasses }) }),
    paramCount: () => countGraph(graph).params,
    stateDict() {
      if (!m.weights) throw new TsimmError('NO_WEIGHTS', `${entry.name} has no weights`);
      return new Map(graph.paramList().map((p) => [p.name, { shape: p.shape, data: m.weights!.get(p.name)! }]));
    },
  };
  return m;
}

/** The class count of a checkpoint's classifier under this model's keys (undefined for a backbone, or keys that do not map: fitBuiltCheckpoint then says why). */
export function headWidth(m: BuiltModel, ck: { tensors: Map<string, HostTensor>; scheme?: KeyScheme }): number | undefined {
  try {
    return mapCheckpointFor(m.graph, ck.tensors, ck.scheme).tensors.get(`${m.cfg.classifier}.weight`)?.shape[0];
  } catch {
    return undefined;
  }
}

/** Checkpoint tensors (under their own keys) → this model's weights, by the same rules as Node's loadCheckpoint. */
export function fitBuiltCheckpoint(m: BuiltModel, ck: { tensors: Map<string, HostTensor>; scheme?: KeyScheme }, what: string): WeightMap {
  try {
    return fitCheckpoint({ name: m.entry.name, graph: m.graph, entry: m.entry, cfg: m.cfg, numClasses: m.numClasses, inChans: 3, newHeadAllowed: m.newHeadAllowed }, mapCheckpointFor(m.graph, ck.tensors, ck.scheme), what);
  } catch (e) {
    if (e instanceof InputError || e instanceof ShapeError) throw new TsimmError('BAD_CHECKPOINT', (e as Error).message);
    throw e;
  }
}
