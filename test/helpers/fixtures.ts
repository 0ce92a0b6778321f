/**
 * "fixture weights v1" (shared/fixtures/README.md): deterministic tensors from a name, a shape and a seed,
 * plus the reference's BatchNorm statistics, golden logits and features.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpy } from '../../src/node/npy.js';
import { loadSafetensors } from '../../src/node/safetensors.js';
import type { HostTensor } from '../../src/weights/tensor.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED = process.env['TSIMM_SHARED'] ?? resolve(REPO, '../shared');
export const FIXTURES = join(SHARED, 'fixtures');
/** Reason to skip a test that needs ../shared (absent in a user's clone), or false when it is there. */
export const NO_SHARED: string | false = existsSync(join(FIXTURES, 'README.md')) ? false : `../shared is absent (${SHARED}); these tests run in CI`;

export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

export function mix32(x: number): number {
  x >>>= 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** n float64 values in [0, 1) for tensor `key`. */
export function uniform(key: string, n: number, seed: number): Float64Array {
  const base = (fnv1a32(key) ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = mix32((base + i) >>> 0) / 4294967296;
  return out;
}

/** The float32 value of state_dict tensor `key` (PyTorch layout). */
export function fixtureTensor(key: string, shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = uniform(key, n, seed);
  const leaf = key.slice(key.lastIndexOf('.') + 1);
  const out = new Float32Array(n);
  if (leaf === 'running_var') for (let i = 0; i < n; i++) out[i] = 0.5 + u[i]!;
  else if (leaf === 'running_mean') for (let i = 0; i < n; i++) out[i] = (u[i]! - 0.5) * 0.2;
  else if (shape.length <= 1 && leaf === 'weight') for (let i = 0; i < n; i++) out[i] = 0.5 + u[i]!;
  else if (shape.length <= 1) for (let i = 0; i < n; i++) out[i] = (u[i]! - 0.5) * 0.2;
  else {
    const bound = Math.sqrt(3 / shape.slice(1).reduce((a, b) => a * b, 1));
    for (let i = 0; i < n; i++) out[i] = (2 * u[i]! - 1) * bound;
  }
  return out;
}

export function fixtureInput(shape: number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = uniform('input', n, seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = 2 * u[i]! - 1;
  return { shape, data };
}

export interface FixtureMeta {
  model: string;
  seed: number;
  input_shape: [number, number, number, number];
  params: number;
  tensors: Record<string, number[]>;
  top1: number[];
  pretrained_cfg: { input_size: number[]; interpolation: string; crop_pct: number; mean: number[]; std: number[]; num_classes: number };
  tolerance_rel: number;
}

export interface Fixture {
  dir: string;
  meta: FixtureMeta;
  weights: Map<string, HostTensor>;
  input: HostTensor;
  logits: HostTensor;
  features: HostTensor;
}

/** Case folders (those with a meta.json) under `root`, sorted. */
export function fixtureNames(root = FIXTURES): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'meta.json')))
    .map((d) => d.name)
    .sort();
}

export function loadFixture(name: string): Fixture {
  const dir = join(FIXTURES, name);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as FixtureMeta;
  const bnStats = loadSafetensors(join(dir, 'bn_stats.safetensors'));
  const weights = new Map<string, HostTensor>();
  for (const [key, shape] of Object.entries(meta.tensors)) {
    weights.set(key, bnStats.get(key) ?? { shape, data: fixtureTensor(key, shape, meta.seed) });
  }
  return {
    dir,
    meta,
    weights,
    input: fixtureInput(meta.input_shape, meta.seed),
    logits: readNpy(join(dir, 'logits.npy')),
    features: readNpy(join(dir, 'features.npy')),
  };
}

/** max|a - b| / max(1, max|b|): the fixtures' error measure. */
export function relError(actual: Float32Array, expected: Float32Array): number {
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
  }
  return maxDiff / Math.max(1, maxRef);
}
