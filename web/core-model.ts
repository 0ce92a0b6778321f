/**
 * A zoo model in the page, without I/O: the registry entry, its pretrained config, the architecture's graph at
 * one input size, and its weights. Checkpoints are fitted by timm's rule (as Node's Model.loadCheckpoint): a
 * classifier of another width is freshly initialised, one that fits (a fine-tuned checkpoint) loads.
 */
import { countGraph } from '../src/ir/count.js';
import type { Graph } from '../src/ir/graph.js';
import { ShapeError } from '../src/ir/graph.js';
import { resolveModel } from '../src/models/index.js';
import type { KeyScheme, ModelEntry, PretrainedCfg } from '../src/models/types.js';
import type { WeightMap } from '../src/onnx/export.js';
import { resolvePreprocess, type PreprocessConfig } from '../src/data/transforms.js';
import { applyWeights } from '../src/weights/apply.js';
import { mapCheckpointFor } from '../src/weights/checkpoint.js';
import { initWeights } from '../src/weights/init.js';
import type { HostTensor } from '../src/weights/tensor.js';
import { TsimmError } from './errors.js';

export interface BuiltModel {
  entry: ModelEntry;
  cfg: PretrainedCfg;
  numClasses: number;
  inputSize: [number, number];
  graph: Graph;
  weights?: WeightMap;
  preprocess: PreprocessConfig;
  initRandom(seed: number): void;
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
    inputSize,
    graph,
    preprocess: resolvePreprocess(cfg, { size: inputSize }),
    initRandom(seed) {
      m.weights = initWeights(graph, seed);
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

/** Checkpoint tensors (under their own keys) → this model's weights, by timm's classifier rule. */
export function fitCheckpoint(m: BuiltModel, ck: { tensors: Map<string, HostTensor>; scheme?: KeyScheme }, what: string): WeightMap {
  const { tensors, unmapped } = mapCheckpointFor(m.graph, ck.tensors, ck.scheme);
  if (unmapped.length) {
    throw new TsimmError('BAD_CHECKPOINT', `${what} does not fit ${m.entry.name}: ${unmapped.length} keys match no parameter (${unmapped.slice(0, 5).join(', ')}${unmapped.length > 5 ? ', …' : ''}); is this the right model?`);
  }
  const head = tensors.get(`${m.cfg.classifier}.weight`);
  const resetHead = m.numClasses !== (head ? head.shape[0] : m.cfg.numClasses);
  const classifier = `${m.cfg.classifier}.`;
  try {
    return applyWeights(m.graph, tensors, what, resetHead ? { fallback: initWeights(m.graph), skip: (k) => k.startsWith(classifier) } : {});
  } catch (e) {
    throw new TsimmError('BAD_CHECKPOINT', (e as Error).message);
  }
}
