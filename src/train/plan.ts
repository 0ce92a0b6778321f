/**
 * What to train and how, independent of the runtime (onnxruntime-node in Node, onnxruntime-web in the page):
 * the trainer's options, timm's freeze rules, the loss, and the training graph they give.
 *
 * Freezing follows timm's `freeze()`: a frozen module's parameters get no gradient and its BatchNorms use their
 * running statistics (FrozenBatchNorm2d), so the backward pass stops below the lowest trainable layer.
 */
import type { Graph } from '../ir/graph.js';
import type { WeightMap } from '../onnx/export.js';
import { InputError } from '../weights/tensor.js';
import { buildTrainGraph, type TrainGraph } from './autodiff.js';
import type { EngineOptions } from './engine.js';
import type { LossSpec } from './loss.js';

/** ONNX Runtime's graph optimization levels (the same names in -node and -web). */
export type Optimization = 'disabled' | 'basic' | 'extended' | 'all';

export interface DistillOptions {
  kind: 'kl' | 'dml';
  /** KL temperature (default 1). */
  temperature?: number;
  /** Weight of the distillation term: loss = (1 − α)·CE + α·KD (default 0.5). */
  alpha?: number;
}

export interface TrainerOptions extends EngineOptions {
  /** 'train': batch statistics, running statistics updated (default); 'frozen': running statistics. */
  batchNorm?: 'train' | 'frozen';
  /** Module prefixes to freeze (`conv1`, `layer1`, `layer2.0`); `trainOnly` is the complement. */
  freeze?: string[];
  /** Train only these module prefixes (e.g. the classifier, `fc`); everything else is frozen. */
  trainOnly?: string[];
  distill?: DistillOptions;
  /** ONNX Runtime intra-op threads (default: the cores). */
  threads?: number;
  /** ONNX Runtime graph optimization level (default 'all'). */
  optimization?: Optimization;
  /**
   * Let ONNX Runtime's idle threads spin (default false): spinning threads take the cores that data workers and the
   * host-side update need (resnet18 32 px, batch 64, on the shared 2-core machine: 0.52× the step time without).
   */
  spin?: boolean;
  /**
   * Node only: run convs with trainable weights on ONNX Runtime's blocked (NCHWc) CPU kernels when it has them
   * (default true; TSIMM_NCHWC=0 turns it off). The page's runtime has no such ops and ignores this.
   */
  nchwc?: boolean;
}

const matches = (name: string, prefix: string) => name === prefix || name.startsWith(`${prefix}.`);

/** Top-level modules of a graph (for the error of a prefix that matches nothing). */
export function topModules(graph: Graph): string[] {
  return [...new Set(graph.paramList().map((p) => p.name.split('.')[0]!))];
}

/** Which parameters train and which BatchNorms normalize with batch statistics. */
export function trainablePlan(graph: Graph, o: Pick<TrainerOptions, 'freeze' | 'trainOnly' | 'batchNorm'>): { trainable: Set<string>; bnTrain: (path: string) => boolean } {
  const params = graph.paramList();
  for (const [flag, list] of [['freeze', o.freeze], ['trainOnly', o.trainOnly]] as const) {
    for (const prefix of list ?? []) {
      if (!params.some((p) => matches(p.name, prefix))) {
        throw new InputError(`${flag} prefix "${prefix}" matches no parameter; the model's top-level modules are ${topModules(graph).join(', ')}`);
      }
    }
  }
  const frozen = (name: string) => (o.freeze ?? []).some((p) => matches(name, p)) || (o.trainOnly !== undefined && !o.trainOnly.some((p) => matches(name, p)));
  const trainable = new Set(params.filter((p) => !frozen(p.name) && p.role !== 'bn_mean' && p.role !== 'bn_var').map((p) => p.name));
  const mode = o.batchNorm ?? 'train';
  return { trainable, bnTrain: (path) => mode === 'train' && !frozen(`${path}.weight`) };
}

function lossSpec(d?: DistillOptions): LossSpec {
  if (!d) return { kind: 'ce' };
  const alpha = d.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new InputError(`distillation alpha must be in [0, 1], got ${alpha}`);
  if (d.kind === 'kl') {
    const temperature = d.temperature ?? 1;
    if (!(temperature > 0)) throw new InputError(`distillation temperature must be > 0, got ${temperature}`);
    return { kind: 'kl', temperature, alpha };
  }
  return { kind: 'dml', alpha };
}

/** The training graph of a model graph with these options (also what the browser runs). */
export function trainGraphFor(graph: Graph, weights: WeightMap, o: TrainerOptions = {}, emit: { nchwc?: number; nchwcWeightGrad?: boolean } = {}): TrainGraph {
  const plan = trainablePlan(graph, o);
  return buildTrainGraph(graph, { ...plan, loss: lossSpec(o.distill), weights, ...emit });
}

