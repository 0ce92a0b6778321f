/**
 * Served ÷ raw ONNX Runtime (benchmark, not a test): how much of ONNX Runtime's own throughput `tsimm serve`
 * delivers to a perf_analyzer-style client.
 *
 * - Served: C closed-loop clients, each sending one binary FP32 image `[1, 3, H, W]` (Inference-Header-Content-Length,
 *   binary logits back: what perf_analyzer and tritonclient send) and waiting for the answer, over and over;
 *   throughput = answers per second. The server runs with its defaults (`--random-weights --port 0` plus
 *   `--server-args`).
 * - Raw: the same ONNX model (same random weights, same export) in one onnxruntime-node session in this process,
 *   with the server's ORT thread count, run back to back at batch 1 (the C = 1 baseline) and at batch
 *   min(C, max batch) (the best a batching server could reach at C); images per second. Twice: with ORT's
 *   default options (idle threads spin) and with the server's (they sleep); "served ÷ raw b1" is the first, as the
 *   issue measured it, "best raw" the faster of the two.
 * - Each round measures raw, then every server, then raw again, so the ratios compare runs seconds apart on a
 *   shared, noisy machine; the table gives each ratio's median over rounds. `--compare DIR` adds a server started
 *   from another checkout (the code before a change) to the same rounds.
 *
 *   npx tsx bench/serve-ratio.ts --model regnetx_002 [--size 28] --levels 1,8 --rounds 3 --seconds 5 [--compare /tmp/base] [--label x]
 * writes bench/results/<host>/<date>-serve-ratio-<model>[-label].json and prints a Markdown table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createModel } from '../src/model.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { machineInfo } from '../src/tasks/bench.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'regnetx_002' },
    size: { type: 'string' },
    levels: { type: 'string', default: '1,8' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'max-batch': { type: 'string', default: '8' },
    'server-args': { type: 'string', default: '' },
    compare: { type: 'string' },
    'compare-args': { type: 'string' },
    'compare-env': { type: 'string', default: '' },
    label: { type: 'string' },
  },
});
const MODEL = args.model!;
const LEVELS = args.levels!.split(',').map(Number);
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const MAX_BATCH = Number(args['max-batch']);
const ROOT = new URL('..', import.meta.url).pathname;
// The server's own default: the cores shared among its workers (one model, one worker).
const THREADS = availableParallelism();

interface Served {
  name: string;
  root: string;
  args: string[];
  env?: Record<string, string>;
  url?: URL;
  child?: ChildProcess;
  agent: Agent;
}

async function start(s: Served): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(s.root, 'src/cli/main.ts'), 'serve', MODEL, '--random-weights', '--port', '0', '--max-batch', String(MAX_BATCH), ...(args.size ? ['--size', args.size] : []), ...s.args], { cwd: s.root, env: { ...process.env, ...s.env }, stdio: ['ignore', 'pipe', 'inherit'] });
  s.child = child;
  let out = '';
  const url = await new Promise<string>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready: (http:\/\/[^\s/]+)/.exec(out);
      if (m) ok(m[1]!);
    });
    child.on('exit', (code) => fail(new Error(`${s.name} server exited with ${code}`)));
  });
  s.url = new URL(url);
}

function send(s: Served, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((ok, fail) => {
    const req = request({ host: s.url!.hostname, port: s.url!.port, method, path, agent: s.agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** C closed-loop clients: answers per second over SECONDS after WARMUP. */
async function served(s: Served, c: number, body: Buffer, headers: Record<string, string>): Promise<number> {
  const path = `/v2/models/${MODEL}/infer`;
  const tWarm = performance.now() + WARMUP * 1000;
  const tEnd = tWarm + SECONDS * 1000;
  let n = 0;
  let bad = 0;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < tEnd) {
        const r = await send(s, 'POST', path, body, headers);
        if (r.status !== 200) bad++;
        const t = performance.now();
        if (t >= tWarm && t <= tEnd) n++;
      }
    }),
  );
  if (bad) throw new Error(`${s.name}: ${bad} answers were not 200`);
  return n / SECONDS;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

type Stats = Record<string, { count: number; ns: number }>;
/** The server's Triton statistics (null where the server has none: the code before they existed). */
async function stats(s: Served): Promise<Stats | null> {
  const r = await send(s, 'GET', `/v2/models/${MODEL}/stats`);
  if (r.status !== 200) return null;
  return (JSON.parse(r.body.toString()) as { model_stats: { inference_stats: Stats }[] }).model_stats[0]!.inference_stats;
}

/**
 * Where a request's time went, ms per request (perf_analyzer's server-side breakdown): queue, compute input
 * (batching and the hand-over to the worker), compute infer (ORT's run), compute output (the hand-back); and the
 * client's mean latency, whose rest is HTTP, parsing and the load generator.
 */
function breakdown(a: Stats | null, b: Stats | null, latencyMs: number) {
  if (!a || !b) return { clientMs: round3(latencyMs) };
  const per = (k: string) => round3((b[k]!.ns - a[k]!.ns) / 1e6 / Math.max(1, b[k]!.count - a[k]!.count));
  return { clientMs: round3(latencyMs), queueMs: per('queue'), computeInputMs: per('compute_input'), computeInferMs: per('compute_infer'), computeOutputMs: per('compute_output') };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'tsimm-ratio-'));
const model = createModel(MODEL, args.size ? { inputSize: Number(args.size) } : {}).initWeights(); // the server's --random-weights: the same deterministic weights
const [c, h, w] = [model.inChans, ...model.inputSize];
const onnx = join(dir, 'model.onnx');
model.exportOnnx(onnx, { outputs: ['logits'] });
// ORT's defaults, and the server's session options (idle threads sleep rather than spin).
const sessions = { spin: await createSession(onnx, { threads: THREADS }), noSpin: await createSession(onnx, { threads: THREADS, spinning: false }) };

/** Raw ORT at batch b: images per second, back to back, over SECONDS after WARMUP. */
async function raw(b: number, session = sessions.spin): Promise<number> {
  const data = new Float32Array(b * c * h * w).map((_, i) => Math.sin(i * 0.37));
  const tWarm = performance.now() + WARMUP * 1000;
  while (performance.now() < tWarm) await runSession(session, { shape: [b, c, h, w], data });
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    await runSession(session, { shape: [b, c, h, w], data });
    n += b;
  }
  return n / ((performance.now() - t0) / 1000);
}

const servers: Served[] = [{ name: 'this tree', root: ROOT, args: args['server-args']!.split(' ').filter(Boolean), agent: new Agent({ keepAlive: true, maxSockets: 256 }) }];
if (args.compare) servers.unshift({ name: `compare (${args.compare})`, root: resolve(args.compare), args: (args['compare-args'] ?? args['server-args']!).split(' ').filter(Boolean), env: Object.fromEntries(args['compare-env']!.split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])), agent: new Agent({ keepAlive: true, maxSockets: 256 }) });

// The perf_analyzer request: binary FP32, binary output; its data are random bytes, here finite values.
const x = new Float32Array(c * h * w).map((_, i) => Math.sin(i * 0.37));
const header = Buffer.from(JSON.stringify({ inputs: [{ name: model.graph.inputs[0], shape: [1, c, h, w], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
const body = Buffer.concat([header, Buffer.from(x.buffer)]);
const headers = { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' };

type Row = { round: number; concurrency: number; rawBatch1: number; rawBatchC: number; rawNoSpinBatch1: number; rawNoSpinBatchC: number; served: Record<string, number>; breakdown: Record<string, ReturnType<typeof breakdown>> };
const rows: Row[] = [];
try {
  for (const s of servers) await start(s);
  for (let r = 0; r < ROUNDS; r++) {
    for (const conc of LEVELS) {
      const b = Math.min(conc, MAX_BATCH);
      const before = { one: await raw(1), c: b === 1 ? 0 : await raw(b), nsOne: await raw(1, sessions.noSpin), nsC: b === 1 ? 0 : await raw(b, sessions.noSpin) };
      const got: Record<string, number> = {};
      const parts: Row['breakdown'] = {};
      // Alternate the servers' order each round, so neither always runs right after raw ORT.
      for (const s of r % 2 ? [...servers].reverse() : servers) {
        const s0 = await stats(s);
        got[s.name] = round1(await served(s, conc, body, headers));
        parts[s.name] = breakdown(s0, await stats(s), (1000 * conc) / got[s.name]!);
      }
      const after = { one: await raw(1), c: b === 1 ? 0 : await raw(b), nsOne: await raw(1, sessions.noSpin), nsC: b === 1 ? 0 : await raw(b, sessions.noSpin) };
      const mean = (x: number, y: number) => round1((x + y) / 2);
      const row = { round: r + 1, concurrency: conc, rawBatch1: mean(before.one, after.one), rawBatchC: b === 1 ? mean(before.one, after.one) : mean(before.c, after.c), rawNoSpinBatch1: mean(before.nsOne, after.nsOne), rawNoSpinBatchC: b === 1 ? mean(before.nsOne, after.nsOne) : mean(before.nsC, after.nsC), served: got, breakdown: parts };
      rows.push(row);
      process.stderr.write(`round ${r + 1} C=${conc}: raw b1 ${row.rawBatch1}/s, raw b${b} ${row.rawBatchC}/s; raw no-spin b1 ${row.rawNoSpinBatch1}/s, b${b} ${row.rawNoSpinBatchC}/s; ${Object.entries(got).map(([k, v]) => `${k} ${v}/s`).join('; ')}\n`);
    }
  }
} finally {
  for (const s of servers) s.child?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

const ratio = (rs: Row[], f: (r: Row) => number) => Math.round(median(rs.map(f)) * 100) / 100;
const summary = LEVELS.flatMap((conc) => {
  const rs = rows.filter((r) => r.concurrency === conc);
  return servers.map((s) => ({
    concurrency: conc,
    server: s.name,
    serverArgs: s.args,
    ...(s.env && Object.keys(s.env).length ? { serverEnv: s.env } : {}),
    servedPerS: median(rs.map((r) => r.served[s.name]!)),
    rawBatch1PerS: median(rs.map((r) => r.rawBatch1)),
    rawBatchCPerS: median(rs.map((r) => r.rawBatchC)),
    rawNoSpinBatch1PerS: median(rs.map((r) => r.rawNoSpinBatch1)),
    rawNoSpinBatchCPerS: median(rs.map((r) => r.rawNoSpinBatchC)),
    ratioVsBatch1: ratio(rs, (r) => r.served[s.name]! / r.rawBatch1),
    ratioVsBatchC: ratio(rs, (r) => r.served[s.name]! / r.rawBatchC),
    ratioVsBestRawBatch1: ratio(rs, (r) => r.served[s.name]! / Math.max(r.rawBatch1, r.rawNoSpinBatch1)),
    // Medians over rounds of each part, ms per request.
    breakdownMs: Object.fromEntries(Object.keys(rs[0]!.breakdown[s.name]!).map((k) => [k, median(rs.map((r) => (r.breakdown[s.name] as Record<string, number>)[k]!))])),
  }));
});
const result = {
  benchmark: 'serve-ratio',
  date: new Date().toISOString(),
  command: `npx tsx bench/serve-ratio.ts ${process.argv.slice(2).join(' ')}`,
  machine: machineInfo(THREADS),
  model: MODEL,
  inputSize: [c, h, w],
  config: { levels: LEVELS, rounds: ROUNDS, seconds: SECONDS, warmup: WARMUP, maxBatch: MAX_BATCH, threads: THREADS, request: 'binary FP32 [1,3,H,W], binary logits (perf_analyzer / tritonclient style); load generator: this process, same machine', raw: 'onnxruntime-node session in this process, same ONNX export and threads; batch 1 and batch min(C, max batch), back to back' },
  summary,
  rounds: rows,
};
const out = join(ROOT, 'bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
mkdirSync(out, { recursive: true });
const file = join(out, `${result.date.slice(0, 10)}-serve-ratio-${MODEL}${args.size ? `-${args.size}px` : ''}${args.label ? `-${args.label}` : ''}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
const lines = [
  `${MODEL} [${c}, ${h}, ${w}], ${result.machine.cpu}, ${result.machine.cores} cores, ${THREADS} ORT threads; medians of ${ROUNDS} rounds`,
  '',
  '| C | server | served/s | raw ORT b1/s (no spin) | raw ORT bC/s (no spin) | served ÷ raw b1 | served ÷ raw bC | served ÷ best raw b1 |',
  '|---|---|---|---|---|---|---|---|',
  ...summary.map((s) => `| ${s.concurrency} | ${s.server}${s.serverArgs.length ? ` (${s.serverArgs.join(' ')})` : ''} | ${s.servedPerS} | ${s.rawBatch1PerS} (${s.rawNoSpinBatch1PerS}) | ${s.rawBatchCPerS} (${s.rawNoSpinBatchCPerS}) | ${s.ratioVsBatch1} | ${s.ratioVsBatchC} | ${s.ratioVsBestRawBatch1} |`),
];
lines.push('', 'ms per request (medians): client latency; server queue / compute input / infer / output', ...summary.map((s) => `C=${s.concurrency} ${s.server}: ${Object.entries(s.breakdownMs).map(([k, v]) => `${k} ${v}`).join(', ')}`));
process.stdout.write(`${lines.join('\n')}\n\n${file}\n`);
