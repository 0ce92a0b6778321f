/**
 * Deterministic initial weights, for exporting or benchmarking an architecture without a checkpoint:
 * He-uniform conv/linear weights, zero biases, identity BatchNorm. Each tensor is seeded by its own name,
 * so the values do not depend on the order or the set of tensors.
 */
import type { Graph } from '../ir/graph.js';
import type { WeightMap } from '../onnx/export.js';

/** A per-tensor seed from its name (FNV-1a), so values do not depend on tensor order. */
export function seedOf(name: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: a small, fast 32-bit PRNG. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function initWeights(graph: Graph, seed = 0): WeightMap {
  const out: WeightMap = new Map();
  for (const p of graph.params.values()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (p.role === 'weight') {
      const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
      const bound = Math.sqrt(6 / fanIn);
      const rand = prng(seedOf(p.name, seed));
      for (let i = 0; i < n; i++) data[i] = (2 * rand() - 1) * bound;
    } else if (p.role === 'bn_weight' || p.role === 'bn_var' || p.role === 'norm_weight') {
      data.fill(1);
    } else if (p.role === 'embed' && p.init) {
      // Layer scale / GRN start at their constant; tokens and position embeddings at a small seeded normal-ish spread.
      if ('fill' in p.init) data.fill(p.init.fill);
      else {
        const rand = prng(seedOf(p.name, seed));
        for (let i = 0; i < n; i++) data[i] = (2 * rand() - 1) * p.init.std * Math.sqrt(3);
      }
    }
    out.set(p.name, data);
  }
  return out;
}
