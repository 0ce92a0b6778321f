/** A model's architecture in the page without weights: its graph built from the registry, and its counts. */
import { countGraph } from '../src/ir/count.js';
import { buildModel } from './core-model.js';

export interface ModelDescription {
  name: string;
  tag: string;
  source: 'timm' | 'paddleclas';
  inputSize: [number, number];
  numClasses: number;
  params: number;
  macs: number;
  /** Weight files the registry names (hub repository or direct URL). */
  weights?: { hfHubId?: string; url?: string };
}

export function describeModel(name: string, o: { inputSize?: number | [number, number]; numClasses?: number } = {}): ModelDescription {
  const m = buildModel(name, o);
  const c = countGraph(m.graph);
  return {
    name: m.entry.name,
    tag: m.cfg.tag,
    source: m.entry.source,
    inputSize: m.inputSize,
    numClasses: m.numClasses,
    params: c.params,
    macs: c.macs,
    weights: m.cfg.weights ? { hfHubId: m.cfg.weights.hfHubId, url: m.cfg.weights.url } : undefined,
  };
}
