/** Match a checkpoint's tensors to a graph's parameters: every name present, every shape equal. */
import type { Graph } from '../ir/graph.js';
import type { WeightMap } from '../onnx/export.js';
import { InputError, type HostTensor } from './tensor.js';

export interface KeyReport {
  missing: string[];
  unexpected: string[];
  mismatched: { name: string; expected: number[]; got: number[] }[];
}

/** Buffers a checkpoint may carry that are not parameters (PyTorch's BatchNorm step counter). */
const IGNORED = /(^|\.)num_batches_tracked$/;

export function compareKeys(graph: Graph, tensors: Map<string, HostTensor>): KeyReport {
  const missing: string[] = [];
  const mismatched: KeyReport['mismatched'] = [];
  for (const p of graph.params.values()) {
    const t = tensors.get(p.name);
    if (!t) missing.push(p.name);
    else if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) mismatched.push({ name: p.name, expected: p.shape, got: t.shape });
  }
  const unexpected = [...tensors.keys()].filter((k) => !graph.params.has(k) && !IGNORED.test(k));
  return { missing, unexpected, mismatched };
}

const first = (xs: string[], n = 10) => xs.slice(0, n).join(', ') + (xs.length > n ? `, … (${xs.length} in all)` : '');

export function formatKeyReport(r: KeyReport): string {
  const parts: string[] = [];
  if (r.missing.length) parts.push(`missing ${r.missing.length}: ${first(r.missing)}`);
  if (r.unexpected.length) parts.push(`unexpected ${r.unexpected.length}: ${first(r.unexpected)}`);
  if (r.mismatched.length) {
    parts.push(`wrong shape ${r.mismatched.length}: ${first(r.mismatched.map((m) => `${m.name} [${m.got.join(', ')}] (model wants [${m.expected.join(', ')}])`))}`);
  }
  return parts.join('; ');
}

/**
 * Weights for `graph` from `tensors`. Strict by default: any missing, unexpected or wrongly shaped tensor is an
 * error listing them. With `allowMissing`, missing parameters keep the values in `fallback` (a new classifier).
 */
export function applyWeights(graph: Graph, tensors: Map<string, HostTensor>, what: string, o: { fallback?: WeightMap; skip?: (name: string) => boolean } = {}): WeightMap {
  const r = compareKeys(graph, tensors);
  if (o.skip) {
    r.missing = r.missing.filter((k) => !o.skip!(k));
    r.unexpected = r.unexpected.filter((k) => !o.skip!(k));
    r.mismatched = r.mismatched.filter((m) => !o.skip!(m.name));
  }
  if (r.missing.length || r.unexpected.length || r.mismatched.length) {
    throw new InputError(`${what} does not fit this model: ${formatKeyReport(r)}; check the model name (tsimm info NAME lists its parameters)`);
  }
  const out: WeightMap = new Map();
  for (const p of graph.params.values()) {
    const t = tensors.get(p.name);
    if (t && !(o.skip && o.skip(p.name))) out.set(p.name, t.data);
    else out.set(p.name, o.fallback!.get(p.name)!);
  }
  return out;
}
