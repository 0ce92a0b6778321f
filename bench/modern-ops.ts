/**
 * What ONNX Runtime makes of the transformer / ConvNeXt graphs (benchmark, not a test): the op types of the
 * optimized fp32 and int8 graphs (does the attention subgraph fuse into an Attention kernel? GELU? LayerNorm?),
 * int8 top-1 agreement and logit error against fp32 on held-out inputs and on the reference photos, and fp32 vs
 * int8 latency timed alternately run by run in one process. Held-out inputs: int8 calibrated on two other
 * batches of the same kind; photos: calibrated on half of ../shared/data/images, checked on the other half.
 *
 * Weights: "fixture weights v1" from ../shared when present (the only non-random weights without a download);
 * for a model without a fixture folder but without BatchNorm either (ConvNeXt, ViT), the same rule's weights
 * (they need no measured BN statistics); else the deterministic init. Usage: npx tsx bench/modern-ops.ts
 * [--models convnext_atto,vit_tiny_patch16_224] [--runs 30] [--tag modern-ops] → prints JSON and writes
 * bench/results/vm/<date>-<tag>.json.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel, type Model } from '../src/model.js';
import { createSession, runSession, type Session } from '../src/runtime/session.js';
import { machineInfo } from '../src/tasks/bench.js';
import { calibrate, checkInt8, imageBatches, int8Onnx } from '../src/tasks/quantize.js';
import { FIXTURES, fixtureInput, fixtureTensor, loadFixture, NO_SHARED, SHARED } from '../test/helpers/fixtures.js';
import { protoFields } from './lib/proto-fields.js';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1]! : d;
};
const models = arg('--models', 'convnext_atto,vit_tiny_patch16_224').split(',');
const runs = Number(arg('--runs', '30'));
const tag = arg('--tag', 'modern-ops');
const tmp = mkdtempSync(join(tmpdir(), 'tsimm-modern-ops-'));

/** op_type of every node of a model's main graph (ModelProto.graph 7 → GraphProto.node 1 → NodeProto.op_type 4). */
function opTypes(buf: Uint8Array): Record<string, number> {
  const fields = protoFields;
  const counts: Record<string, number> = {};
  const graph = fields(buf).find(([f]) => f === 7)![1] as Uint8Array;
  for (const [f, v] of fields(graph)) {
    if (f !== 1) continue;
    const op = new TextDecoder().decode(fields(v as Uint8Array).find(([g]) => g === 4)![1] as Uint8Array);
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort());
}

async function optimizedOps(bytes: Uint8Array, name: string): Promise<{ session: Session; ops: Record<string, number> }> {
  const path = join(tmp, `${name}.onnx`);
  const session = await createSession(bytes, { optimizedModelPath: path });
  return { session, ops: opTypes(readFileSync(path)) };
}

async function alternate(a: Session, b: Session, x: { shape: number[]; data: Float32Array }): Promise<{ fp32Ms: number; int8Ms: number; ratio: number }> {
  for (let i = 0; i < 5; i++) {
    await runSession(a, x);
    await runSession(b, x);
  }
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    await runSession(a, x);
    ta.push(performance.now() - t);
    t = performance.now();
    await runSession(b, x);
    tb.push(performance.now() - t);
  }
  const median = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1]!;
  return { fp32Ms: median(ta), int8Ms: median(tb), ratio: median(ta) / median(tb) };
}

const photos = join(SHARED, 'data', 'images');
const results: unknown[] = [];
for (const name of models) {
  const m: Model = createModel(name);
  let weights = 'init';
  if (!NO_SHARED && existsSync(join(FIXTURES, name))) {
    m.setWeights(loadFixture(name).weights);
    weights = 'fixture-v1';
  } else if (!NO_SHARED && !m.parameters().some((p) => p.name.endsWith('running_var'))) {
    m.setWeights(new Map(m.parameters().map((p) => [p.name, { shape: p.shape, data: fixtureTensor(p.name, p.shape, 0) }])));
    weights = 'fixture-v1 rule (no BN statistics needed)';
  } else m.initWeights(1);
  const [h, w] = m.inputSize;
  const fp32 = await optimizedOps(m.toOnnx(), `${name}-fp32`);
  const ranges = await calibrate(m, [1, 2].map((s) => fixtureInput([4, 3, h, w], 100 + s)));
  const int8 = await optimizedOps(int8Onnx(m, ranges), `${name}-int8`);
  const heldOut = await checkInt8(m, int8.session, (async function* () {
    for (const s of [300, 301, 302, 303]) yield fixtureInput([4, 3, h, w], s);
  })());
  // Photos: calibrated on half of the reference photos, checked on the other half (the model's preprocessing).
  const files = existsSync(photos) ? readdirSync(photos).map((f) => join(photos, f)).sort() : [];
  const half = (k: number) => files.filter((_, i) => i % 2 === k);
  const onPhotos = files.length
    ? await checkInt8(m, await createSession(int8Onnx(m, await calibrate(m, imageBatches(m, half(0), 8)))), imageBatches(m, half(1), 8))
    : undefined;
  const timing: Record<string, unknown> = {};
  for (const batch of [1, 8]) timing[`batch${batch}`] = await alternate(fp32.session, int8.session, fixtureInput([batch, 3, h, w], 7));
  const fused = Object.keys(fp32.ops).filter((op) => /Attention/.test(op));
  results.push({ model: name, weights, attentionFused: fused.length > 0, fp32Ops: fp32.ops, int8Ops: int8.ops, int8HeldOut: heldOut, int8Photos: onPhotos, timing });
  console.error(`${name}: attention fused ${fused.length > 0}; int8 top-1 agreement ${heldOut.top1Agreement} (held-out), ${onPhotos?.top1Agreement} (photos); int8 speed-up ${JSON.stringify(timing)}`);
}
rmSync(tmp, { recursive: true, force: true });
const out = { date: new Date().toISOString(), machine: machineInfo(), protocol: `median of ${runs} alternating runs after 5 warm-up pairs`, results };
const dir = join('bench', 'results', 'vm');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${out.date.slice(0, 10)}-${tag}.json`), `${JSON.stringify(out, null, 1)}\n`);
console.log(JSON.stringify(out, null, 1));
