/**
 * Load test of `tsimm serve` (benchmark, not a test), in the style of Triton's perf_analyzer:
 *
 * 1. A closed-loop concurrency sweep: C clients each send a request and wait for its answer, over and over,
 *    for C in 1, 2, 4, ... 64. Two servers run side by side — dynamic batching on (max batch 8, 2 ms) and off
 *    (max batch 1) — and each level is measured on both in turn, so the pair shares the machine's state. Per
 *    level: throughput, client p50/p90/p99 latency, and the server's own queue and compute time per request and
 *    mean batch size (from /metrics deltas).
 * 2. Overload: an open loop at 2× the best throughput of the sweep for 60 s. Every request must get a response
 *    (200, or 503 from the bounded queue), with 0 connection errors; health checks go on answering; the server's
 *    peak RSS is reported.
 *
 * Requests are what a Triton client sends: a binary FP32 tensor, logits back in binary. Only 127.0.0.1 is ever a
 * target and every loop is bounded. The load generator shares the machine with the server (said in the JSON).
 *
 *   npx tsx bench/serve.ts [--model resnet50d] [--seconds 8] [--overload 60] [--levels 1,2,4,8,16,32,64]
 * writes bench/results/<host>/<date>-serve-<model>.json and prints Markdown tables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo } from '../src/tasks/bench.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet50d' },
    size: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    overload: { type: 'string', default: '60' },
    levels: { type: 'string', default: '1,2,4,8,16,32,64' },
    'max-batch': { type: 'string', default: '8' },
  },
});
const MODEL = args.model!;
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const LEVELS = args.levels!.split(',').map(Number);
const ROOT = new URL('..', import.meta.url).pathname;

interface Server {
  name: string;
  url: URL;
  child: ChildProcess;
  agent: Agent;
}

async function startServer(name: string, extra: string[]): Promise<Server> {
  const sizeArgs = args.size ? ['--size', args.size] : [];
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', MODEL, '--random-weights', '--port', '0', ...sizeArgs, ...extra], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready: (http:\/\/[^\s/]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`${name} server exited with ${code}`)));
  });
  return { name, url: new URL(url), child, agent: new Agent({ keepAlive: true, maxSockets: 1024 }) };
}

function send(s: Server, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: s.url.hostname, port: s.url.port, method, path, agent: s.agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function metrics(s: Server): Promise<Map<string, number>> {
  const text = (await send(s, 'GET', '/metrics')).body.toString();
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i).replace(/\{.*\}/, (l) => (l.includes('reason') ? l : '')), Number(line.slice(i + 1)));
  }
  return m;
}

/** The Triton-style binary request body for one image. */
async function requestBody(s: Server): Promise<{ body: Buffer; headers: Record<string, string> }> {
  const meta = JSON.parse((await send(s, 'GET', `/v2/models/${MODEL}`)).body.toString()) as { inputs: { name: string; shape: number[] }[] };
  const shape = [1, ...meta.inputs[0]!.shape.slice(1)];
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.37));
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: meta.inputs[0]!.name, shape, datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
  return { body: Buffer.concat([header, Buffer.from(x.buffer)]), headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' } };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const r1 = (x: number) => Math.round(x * 10) / 10;

/** C closed-loop clients for warmup + SECONDS; latencies and /metrics deltas of the measured window. */
async function closedLoop(s: Server, c: number, req: { body: Buffer; headers: Record<string, string> }) {
  const path = `/v2/models/${MODEL}/infer`;
  const lat: number[] = [];
  let errors = 0;
  let non200 = 0;
  const tWarm = performance.now() + WARMUP * 1000;
  const tEnd = tWarm + SECONDS * 1000;
  // Server counters are read at the window's edges; client latencies are those of requests ending inside it.
  let m0: Map<string, number> | undefined;
  let m1: Map<string, number> | undefined;
  const window = (async () => {
    await new Promise((r) => setTimeout(r, WARMUP * 1000));
    m0 = await metrics(s);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    m1 = await metrics(s);
  })();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < tEnd) {
        const t0 = performance.now();
        try {
          const r = await send(s, 'POST', path, req.body, req.headers);
          if (r.status !== 200) non200++;
        } catch {
          errors++;
        }
        const t1 = performance.now();
        if (t1 >= tWarm && t1 <= tEnd) lat.push(t1 - t0);
      }
    }),
  );
  await window;
  const d = (k: string) => (m1!.get(k) ?? 0) - (m0!.get(k) ?? 0);
  const ok = d('nv_inference_request_success');
  lat.sort((a, b) => a - b);
  return {
    concurrency: c,
    requests: lat.length,
    throughput: r1(ok / SECONDS),
    p50: r1(pct(lat, 50)),
    p90: r1(pct(lat, 90)),
    p99: r1(pct(lat, 99)),
    serverQueueMs: r1(d('nv_inference_queue_duration_us') / 1000 / ok),
    serverComputeMs: r1(d('nv_inference_compute_infer_duration_us') / 1000 / ok),
    meanBatch: r1(d('nv_inference_count') / d('nv_inference_exec_count')),
    non200,
    errors,
  };
}

/** Open loop at `rate` req/s for `seconds`: every request is sent on schedule whatever the answers. */
async function overload(s: Server, rate: number, seconds: number, req: { body: Buffer; headers: Record<string, string> }) {
  const path = `/v2/models/${MODEL}/infer`;
  const total = Math.round(rate * seconds);
  const statuses = new Map<number, number>();
  let errors = 0;
  const lat200: number[] = [];
  const lat503: number[] = [];
  const health: { ms: number; ok: boolean }[] = [];
  let peakRss = 0;
  const t0 = performance.now();
  let done = false;
  const monitor = (async () => {
    while (!done) {
      const h0 = performance.now();
      try {
        const r = await send(s, 'GET', '/v2/health/live');
        health.push({ ms: performance.now() - h0, ok: r.status === 200 });
        peakRss = Math.max(peakRss, (await metrics(s)).get('process_resident_memory_bytes') ?? 0);
      } catch {
        health.push({ ms: performance.now() - h0, ok: false });
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const ts = performance.now();
    inflight.push(
      send(s, 'POST', path, req.body, req.headers).then(
        (r) => {
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          (r.status === 200 ? lat200 : lat503).push(performance.now() - ts);
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(inflight);
  done = true;
  await monitor;
  const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
  lat200.sort((a, b) => a - b);
  lat503.sort((a, b) => a - b);
  const hl = health.map((h) => h.ms).sort((a, b) => a - b);
  return {
    rate: r1(rate),
    seconds,
    sent: total,
    answered,
    lost: total - answered - errors,
    connectionErrors: errors,
    statuses: Object.fromEntries(statuses),
    okPerSecond: r1((statuses.get(200) ?? 0) / ((performance.now() - t0) / 1000)),
    p50ok: r1(pct(lat200, 50)),
    p99ok: r1(pct(lat200, 99)),
    p50rejected: r1(pct(lat503, 50)),
    healthChecks: health.length,
    healthFailures: health.filter((h) => !h.ok).length,
    healthP99Ms: r1(pct(hl, 99)),
    peakRssMB: Math.round(peakRss / 1e6),
  };
}

const vmHwm = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const on = await startServer('batching on', ['--max-batch', args['max-batch']!, '--max-queue-delay', '2']);
const off = await startServer('batching off', ['--max-batch', '1', '--max-queue-delay', '0']);
const body = await requestBody(on);
const sweep: { concurrency: number; on: Awaited<ReturnType<typeof closedLoop>>; off: Awaited<ReturnType<typeof closedLoop>> }[] = [];
try {
  for (const c of LEVELS) {
    const a = await closedLoop(on, c, body);
    const b = await closedLoop(off, c, body);
    sweep.push({ concurrency: c, on: a, off: b });
    process.stderr.write(`c=${c}: on ${a.throughput}/s p50 ${a.p50} ms (batch ${a.meanBatch}); off ${b.throughput}/s p50 ${b.p50} ms\n`);
  }
  off.child.kill('SIGTERM');
  const saturating = Math.max(...sweep.map((r) => r.on.throughput));
  process.stderr.write(`overload: ${2 * saturating} req/s for ${args.overload} s\n`);
  const over = await overload(on, 2 * saturating, Number(args.overload), body);
  const stillReady = (await send(on, 'GET', '/v2/health/ready')).status === 200;
  const peakRssHwmMB = Math.round(vmHwm(on.child.pid!));
  const result = {
    benchmark: 'serve',
    date: new Date().toISOString(),
    machine: machineInfo(),
    model: MODEL,
    config: { seconds: SECONDS, warmup: WARMUP, levels: LEVELS, on: { maxBatch: Number(args['max-batch']), maxQueueDelayMs: 2, maxQueue: 256 }, off: { maxBatch: 1 }, request: 'binary FP32 tensor [1,3,H,W], binary logits (Triton client style)', loadGenerator: 'same machine, one Node process' },
    sweep,
    overload: { ...over, stillReadyAfter: stillReady, peakRssHwmMB },
  };
  const dir = join(ROOT, 'bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.date.slice(0, 10)}-serve-${MODEL}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const lines = [
    `${MODEL}, ${result.machine.cpu}, ${result.machine.cores} cores; batching on = max batch ${args['max-batch']}, 2 ms; off = max batch 1`,
    '',
    '| concurrency | on: req/s | on: p50 / p90 / p99 ms | on: queue / compute ms | on: mean batch | off: req/s | off: p50 / p90 / p99 ms | off: queue / compute ms |',
    '|---|---|---|---|---|---|---|---|',
    ...sweep.map((r) => `| ${r.concurrency} | ${r.on.throughput} | ${r.on.p50} / ${r.on.p90} / ${r.on.p99} | ${r.on.serverQueueMs} / ${r.on.serverComputeMs} | ${r.on.meanBatch} | ${r.off.throughput} | ${r.off.p50} / ${r.off.p90} / ${r.off.p99} | ${r.off.serverQueueMs} / ${r.off.serverComputeMs} |`),
    '',
    `overload: ${over.rate} req/s for ${over.seconds} s: ${over.sent} sent, ${over.answered} answered (${Object.entries(over.statuses).map(([k, v]) => `${v} × ${k}`).join(', ')}), ${over.lost} lost, ${over.connectionErrors} connection errors; ${over.okPerSecond} ok/s; health ${over.healthChecks - over.healthFailures}/${over.healthChecks} ok (p99 ${over.healthP99Ms} ms); peak RSS ${peakRssHwmMB} MB; ready after: ${stillReady}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n\n${file}\n`);
} finally {
  on.child.kill('SIGTERM');
  off.child.kill('SIGTERM');
}
