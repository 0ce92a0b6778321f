/**
 * Why is ours slower (or faster) than a compared ONNX file? ONNX Runtime's optimized graphs of both side by side
 * (op types whose counts differ: a fusion one side gets and the other does not) and its profiler's kernel time per
 * op type for each (benchmark tooling, not a test).
 *
 *   npx tsx bench/ort-graph.ts MODEL|A.onnx FILE.onnx [--batch 8] [--runs 5] [--threads 2] [--size N]
 *
 * MODEL: ours with random weights (initWeights); or any ONNX file (e.g. two int8 variants: `--size` then gives
 * the input size, default 224). One random input; `--runs` profiled runs each after 3 untimed ones, the two sides taking turns run by run.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { uniformInput } from '../src/math.js';
import { createModel } from '../src/model.js';
import { createSession, sessionOptions, type Session } from '../src/runtime/session.js';
import { protoFields } from './lib/proto-fields.js';

const [name, file] = process.argv.slice(2);
const arg = (k: string, d: string) => (process.argv.includes(k) ? process.argv[process.argv.indexOf(k) + 1]! : d);
if (!name || !file) throw new Error('usage: npx tsx bench/ort-graph.ts MODEL FILE.onnx [--batch 8] [--runs 5] [--threads 2] [--size N]');
const batch = Number(arg('--batch', '8'));
const runs = Number(arg('--runs', '5'));
const threads = Number(arg('--threads', '2'));
const size = process.argv.includes('--size') ? Number(arg('--size', '0')) : undefined;
const tmp = mkdtempSync(join(tmpdir(), 'tsimm-ort-graph-'));

const fields = protoFields;

/**
 * op_type of every node of the main graph (ModelProto.graph 7 → node 1), with its domain when not ONNX's
 * (com.microsoft.nchwc.Conv: a conv in ORT's blocked layout).
 */
function opTypes(buf: Uint8Array): Map<string, number> {
  const dec = new TextDecoder();
  const counts = new Map<string, number>();
  const graph = fields(buf).find(([f]) => f === 7)![1] as Uint8Array;
  for (const [f, v] of fields(graph)) {
    if (f !== 1) continue;
    const nf = fields(v as Uint8Array);
    const op = dec.decode(nf.find(([g]) => g === 4)![1] as Uint8Array);
    const domain = nf.find(([g]) => g === 7);
    const key = domain && (domain[1] as Uint8Array).length ? `${dec.decode(domain[1] as Uint8Array)}.${op}` : op;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Kernel ms per run by op type for each session, from ORT's profiler: 3 untimed runs, then `runs` runs taking
 * turns (one of ours, one of theirs), so both see the same load.
 */
type Open = (o: ort.InferenceSession.SessionOptions) => Promise<Session>;
async function profileBoth(opens: [Open, Open]): Promise<[Map<string, number>, Map<string, number>]> {
  const dirs = opens.map((_, k) => join(tmp, `prof-${k}`));
  const sessions: Session[] = [];
  for (const [k, open] of opens.entries()) {
    mkdirSync(dirs[k]!);
    sessions.push(await open({ enableProfiling: true, profileFilePrefix: join(dirs[k]!, 'p') } as ort.InferenceSession.SessionOptions));
  }
  const x = uniformInput([batch, 3, ...inputSize]);
  for (let i = 0; i < 3 + runs; i++) for (const s of sessions) await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x.data, x.shape) });
  type Ev = { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } };
  const out: Map<string, number>[] = [];
  for (const [k, s] of sessions.entries()) {
    s.endProfiling();
    await s.release();
    const events = JSON.parse(readFileSync(join(dirs[k]!, readdirSync(dirs[k]!).find((f) => f.endsWith('.json'))!), 'utf8')) as Ev[];
    const timed = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((p, q) => p.ts - q.ts).slice(3);
    const acc = new Map<string, number>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !timed.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur)) continue;
      const op = e.args?.op_name ?? '?';
      acc.set(op, (acc.get(op) ?? 0) + e.dur / 1000 / runs);
    }
    out.push(acc);
  }
  return [out[0]!, out[1]!];
}

const model = name.endsWith('.onnx') ? undefined : createModel(name, { inputSize: size }).initWeights(0);
const inputSize = model?.inputSize ?? [size ?? 224, size ?? 224];
const oursOpt = join(tmp, 'ours.onnx');
const theirsOpt = join(tmp, 'theirs.onnx');
const ours = model?.toOnnx() ?? name;
await (await createSession(ours, { threads, optimizedModelPath: oursOpt })).release();
await (await createSession(file, { threads, optimizedModelPath: theirsOpt })).release();
const a = opTypes(readFileSync(oursOpt));
const b = opTypes(readFileSync(theirsOpt));
// The options createSession uses (sessionOptions), plus the profiler.
const prof = (o: ort.InferenceSession.SessionOptions) => ({ ...sessionOptions({ threads }), ...o });
const [pa, pb] = await profileBoth([
  (o) => (typeof ours === 'string' ? ort.InferenceSession.create(ours, prof(o)) : ort.InferenceSession.create(ours, prof(o))),
  (o) => ort.InferenceSession.create(file, prof(o)),
]);
rmSync(tmp, { recursive: true, force: true });
// The profiler names kernels without their domain: rows are op types, node counts say which domains.
const byOp = (m: Map<string, number>) => {
  const r = new Map<string, string[]>();
  for (const [k, n] of [...m].sort()) {
    const op = k.slice(k.lastIndexOf('.') + 1);
    const domain = k.includes('.') ? k.slice(0, k.lastIndexOf('.')).replace(/^com\.microsoft\.?/, 'ms.').replace(/\.$/, '') : '';
    r.set(op, [...(r.get(op) ?? []), domain ? `${n} ${domain}` : String(n)]);
  }
  return r;
};
const [ca, cb] = [byOp(a), byOp(b)];
const keys = [...new Set([...ca.keys(), ...cb.keys(), ...pa.keys(), ...pb.keys()])].sort((p, q) => (pa.get(q) ?? 0) + (pb.get(q) ?? 0) - (pa.get(p) ?? 0) - (pb.get(p) ?? 0));
const f1 = (v?: number) => (v === undefined ? '–' : v.toFixed(1));
console.log(`${name} vs ${file}, batch ${batch}, ${threads} threads, ${runs} profiled runs each, taking turns`);
console.log(`| op type | nodes ours | nodes theirs | kernel ms ours | kernel ms theirs |\n| --- | --- | --- | --- | --- |`);
for (const k of keys) console.log(`| ${k} | ${ca.get(k)?.join(' + ') ?? 0} | ${cb.get(k)?.join(' + ') ?? 0} | ${f1(pa.get(k))} | ${f1(pb.get(k))} |`);
const sum = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
console.log(`| total | ${[...a.values()].reduce((s, v) => s + v, 0)} | ${[...b.values()].reduce((s, v) => s + v, 0)} | ${f1(sum(pa))} | ${f1(sum(pb))} |`);
