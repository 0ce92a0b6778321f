/**
 * A training graph packed for another runtime (the browser): the ONNX bytes, the host's spec, and the weights the
 * host updates (trainable parameters and train-mode running statistics) as one float32 blob with an index.
 * `tsimm/web`'s `loadTrainer` reads the same three parts.
 */
import type { TrainSpec } from './engine.js';
import type { Trainer } from './trainer.js';

export interface BundleSpec extends TrainSpec {
  /** name → [offset, length] in float32 elements of the weights blob. */
  weightIndex: Record<string, [number, number]>;
}

export interface TrainingBundle {
  onnx: Uint8Array;
  spec: BundleSpec;
  weights: Float32Array;
}

/** The weights a training host holds: trainable parameters and the running statistics it updates. */
export function hostWeightNames(spec: TrainSpec): string[] {
  return [...spec.paramInputs, ...spec.bnStats.flatMap((b) => [`${b.path}.running_mean`, `${b.path}.running_var`])];
}

export function trainingBundle(trainer: Trainer): TrainingBundle {
  const { bytes, ...spec } = trainer.graph;
  const names = hostWeightNames(spec);
  const weightIndex: Record<string, [number, number]> = {};
  let total = 0;
  for (const n of names) {
    const len = trainer.weights.get(n)!.length;
    weightIndex[n] = [total, len];
    total += len;
  }
  const weights = new Float32Array(total);
  for (const n of names) weights.set(trainer.weights.get(n)!, weightIndex[n]![0]);
  return { onnx: bytes, spec: { ...spec, weightIndex }, weights };
}

/** Weights of a bundle as a map (views into the blob: updates write through). */
export function bundleWeights(spec: BundleSpec, blob: Float32Array): Map<string, Float32Array> {
  return new Map(Object.entries(spec.weightIndex).map(([n, [off, len]]) => [n, blob.subarray(off, off + len)]));
}
