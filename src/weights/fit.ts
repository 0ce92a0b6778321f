/**
 * Checkpoint tensors (already under our keys) → a model's weights, by timm's rules; one rule for Node's
 * Model.loadCheckpoint and the page's worker:
 * - every key must name a parameter (else it is the wrong model);
 * - the architecture's own adaptation runs first (a ViT's pos_embed resampled to this grid);
 * - a classifier of another width is freshly initialised only when the caller asked for another class count
 *   (fine-tuning, as timm's num_classes); otherwise it is an error naming the width: never a silent random head;
 * - a 3-channel first conv is adapted to the model's channels (timm's adapt_input_conv).
 */
import type { Graph } from '../ir/graph.js';
import type { ModelEntry, PretrainedCfg } from '../models/types.js';
import type { WeightMap } from '../onnx/export.js';
import { applyWeights } from './apply.js';
import { initWeights } from './init.js';
import { InputError, type HostTensor } from './tensor.js';

export interface FitTarget {
  name: string;
  graph: Graph;
  entry: Pick<ModelEntry, 'adaptCheckpoint'>;
  cfg: Pick<PretrainedCfg, 'classifier' | 'firstConv' | 'numClasses' | 'extraClassifiers'>;
  numClasses: number;
  inChans: number;
  /** The caller asked for another class count than the pretrained config's: a new classifier is expected. */
  newHeadAllowed: boolean;
}

export function fitCheckpoint(m: FitTarget, mapped: { tensors: Map<string, HostTensor>; unmapped: string[] }, what: string): WeightMap {
  const { tensors, unmapped } = mapped;
  if (unmapped.length) {
    throw new InputError(`${what} does not fit ${m.name}: ${unmapped.length} keys match no parameter (${unmapped.slice(0, 10).join(', ')}${unmapped.length > 10 ? ', …' : ''}); is this the right model?`);
  }
  m.entry.adaptCheckpoint?.(tensors, m.graph);
  const width = tensors.get(`${m.cfg.classifier}.weight`)?.shape[0];
  const resetHead = width !== m.numClasses && (width === undefined ? m.numClasses !== m.cfg.numClasses : true);
  if (resetHead && !m.newHeadAllowed && width !== undefined) {
    throw new InputError(
      `${what} has a ${width}-class classifier (${m.cfg.classifier}) but this ${m.name} has ${m.numClasses} classes: create the model with numClasses: ${width} (CLI: --num-classes ${width}), or with weights: '${what}' to take it from the checkpoint`,
    );
  }
  const first = tensors.get(`${m.cfg.firstConv}.weight`);
  if (first && m.inChans !== first.shape[1]) tensors.set(`${m.cfg.firstConv}.weight`, adaptInputConv(first, m.inChans));
  const heads = [m.cfg.classifier, ...(m.cfg.extraClassifiers ?? [])].map((c) => `${c}.`);
  return applyWeights(m.graph, tensors, what, resetHead ? { fallback: initWeights(m.graph), skip: (k) => heads.some((c) => k.startsWith(c)) } : {});
}

/** timm's adapt_input_conv: 1 channel sums RGB; more channels repeat RGB and rescale. */
export function adaptInputConv(t: HostTensor, inChans: number): HostTensor {
  const [out, rgb, kh, kw] = t.shape as [number, number, number, number];
  const plane = kh * kw;
  const data = new Float32Array(out * inChans * plane);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < inChans; c++) {
      for (let i = 0; i < plane; i++) {
        let v = 0;
        if (inChans === 1) for (let r = 0; r < rgb; r++) v += t.data[(o * rgb + r) * plane + i]!;
        else v = (t.data[(o * rgb + (c % rgb)) * plane + i]! * rgb) / inChans;
        data[(o * inChans + c) * plane + i] = v;
      }
    }
  }
  return { shape: [out, inChans, kh, kw], data };
}
