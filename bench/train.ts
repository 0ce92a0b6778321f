/**
 * Training speed and peak memory (benchmark, not a test): tsimm's trainer against PyTorch CPU training of the same
 * timm architecture (`bench/tools/torch_train.py`, Debian's /usr/bin/python3 with torch), side by side.
 *
 *   npx tsx bench/train.ts [--rows resnet18@224x16,resnet18@32x128] [--modes full,head] [--warmup 2] [--steps 5]
 *                          [--reps 1] [--threads 2] [--no-torch] [--no-save] [--tag NAME]
 *   npx tsx bench/train.ts --profile resnet50d@224x16 [--mode full|head] [--warmup 2] [--runs 2]
 *
 * Protocol: one row = model, input size, batch, mode. `full`: every parameter trains, BatchNorm in train mode;
 * `head`: only the classifier trains (`trainOnly: [cfg.classifier]`; frozen modules use running statistics, as
 * timm's freeze()). Recipe on both sides: SGD lr 0.01, momentum 0.9, weight decay 1e-4 (rank ≥ 2 tensors),
 * label smoothing 0.1, random weights, one random batch created outside the timer. Every measurement runs in its
 * own child process (so peak RSS, `maxRSS`, is that row's): a tsimm and a PyTorch process are set up one after the
 * other, then take turns step by step (ABBA), so both see the same machine load; `warmup` untimed steps (tsimm's
 * first step creates the ONNX Runtime session), then `steps` timed `trainer.step` calls (feeds, forward +
 * backward, host running statistics and optimizer update) against timed `zero_grad + forward + loss + backward +
 * opt.step` in PyTorch. The paired ratio is tsimm's step k over PyTorch's step k. With `--reps N` the timed steps
 * of all repetitions are pooled and peak RSS is the worst repetition.
 * Writes bench/results/vm/<date>-train[-TAG].json (with the TSIMM_* environment and a hash of src/train, which
 * says which engine was measured) and prints a Markdown table.
 */
import { createHash } from 'node:crypto';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import ort from 'onnxruntime-node';
import { createModel } from '../src/model.js';
import { machineInfo } from '../src/tasks/bench.js';
import { nchwcBlock, trainGraphFor } from '../src/train/trainer.js';

const peakMB = () => process.resourceUsage().maxRSS / 1024;
const here = dirname(import.meta.filename);
const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = join(here, 'tools', 'torch_train.py');

type Mode = 'full' | 'head';

interface Side {
  setupMs: number;
  stepMs: number[];
  warmup: number;
  losses: number[];
  params: number;
  trainable: number;
  maxRssMB: number;
}

if (process.argv[2] === '--bare') {
  // The floor of every tsimm row: Node with tsimm and ONNX Runtime loaded, no model.
  console.log(JSON.stringify({ maxRssMB: peakMB() }));
  process.exit(0);
}

if (process.argv[2] === '--child') {
  // Lockstep: prints {"ready"} after setup, then one training step per `step` line on stdin (its time on
  // stdout); any other line prints the summary and exits. The driver alternates this process with PyTorch's.
  const [name, size, batch, mode, warmup, threads] = process.argv.slice(3) as [string, string, string, Mode, string, string];
  const [s, n] = [Number(size), Number(batch)];
  const t0 = performance.now();
  const model = createModel(name, { inputSize: s }).initWeights(0);
  const trainer = model.trainer({
    optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4, labelSmoothing: 0.1, batchNorm: 'train', threads: Number(threads),
    ...(mode === 'head' ? { trainOnly: [model.cfg.classifier] } : {}),
  });
  const setupMs = performance.now() - t0;
  // Same input recipe as torch_train.py (values differ; timing does not depend on them).
  const data = new Float32Array(n * 3 * s * s);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  const targets = Array.from({ length: n }, (_, i) => i % 1000);
  const stepMs: number[] = [];
  const losses: number[] = [];
  console.log(JSON.stringify({ ready: true, setupMs }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() !== 'step') break;
    const t = performance.now();
    const r = await trainer.step({ shape: [n, 3, s, s], data }, targets);
    stepMs.push(performance.now() - t);
    losses.push(r.loss);
    console.log(JSON.stringify({ ms: stepMs.at(-1), loss: r.loss }));
  }
  const params = model.parameters().filter((p) => !/running_(mean|var)$/.test(p.name));
  const side: Side = {
    setupMs, stepMs, warmup: Number(warmup), losses,
    params: params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
    trainable: trainer.graph.paramInputs.reduce((a, p) => a + trainer.graph.paramShapes[p]!.reduce((x, y) => x * y, 1), 0),
    maxRssMB: peakMB(),
  };
  await trainer.release();
  console.log(JSON.stringify(side));
  process.exit(0);
}

if (process.argv[2] === '--profile') {
  await profile(process.argv.slice(3));
  process.exit(0);
}

/**
 * `--profile MODEL@SIZExBATCH [--mode full|head] [--warmup 2] [--runs 2] [--threads 2]`: ONNX Runtime's profiler on
 * the training graph (`trainer.graph.bytes`), `warmup` untimed runs then `runs` profiled runs; kernel time per step
 * aggregated by op type, by role (forward, `:dW`, `:dX`, other backward, layout reorders) and per node.
 */
async function profile(a: string[]): Promise<void> {
  const get = (f: string, d: string) => (a.includes(f) ? a[a.indexOf(f) + 1]! : d);
  const m = /^([\w.]+)@(\d+)x(\d+)$/.exec(a[0] ?? '');
  if (!m) throw new Error('--profile MODEL@SIZExBATCH');
  const [name, s, n] = [m[1]!, Number(m[2]), Number(m[3])];
  const mode = get('--mode', 'full') as Mode;
  const runs = Number(get('--runs', '2'));
  // Two untimed runs: the first two touch fresh memory (ORT's memory-pattern block is faulted in on run 2).
  const warm = Number(get('--warmup', '2'));
  const threads = Number(get('--threads', '2'));
  const model = createModel(name, { inputSize: s }).initWeights(0);
  const options = { labelSmoothing: 0.1, batchNorm: 'train', ...(mode === 'head' ? { trainOnly: [model.cfg.classifier] } : {}) } as const;
  const trainer = model.trainer(options);
  // The graph the trainer's session runs: with ORT's blocked convs unless TSIMM_NCHWC=0 (src/train/nchwc.ts).
  const block = process.env['TSIMM_NCHWC'] === '0' ? 0 : await nchwcBlock();
  const g = block ? trainGraphFor(trainer.modelGraph, trainer.weights, options, { nchwc: block, nchwcWeightGrad: process.env['TSIMM_NCHWC_DW'] !== '0' }) : trainer.graph;
  const dir = mkdtempSync(join(tmpdir(), 'tsimm-prof-'));
  const session = await ort.InferenceSession.create(g.bytes, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3,
    enableProfiling: true, profileFilePrefix: join(dir, 'p'),
  });
  const x = new Float32Array(n * 3 * s * s);
  for (let i = 0; i < x.length; i++) x[i] = Math.random() * 2 - 1;
  const feeds: Record<string, ort.Tensor> = {
    [g.inputs.x]: new ort.Tensor('float32', x, [n, 3, s, s]),
    [g.inputs.targets]: new ort.Tensor('float32', trainer.engine.softTargets(Array.from({ length: n }, (_, i) => i % 1000), n), [n, g.numClasses]),
  };
  for (const p of g.paramInputs) feeds[p] = new ort.Tensor('float32', trainer.weights.get(p)!, g.paramShapes[p]!);
  const wall: number[] = [];
  for (let i = 0; i < warm + runs; i++) {
    const t = performance.now();
    await session.run(feeds);
    wall.push(performance.now() - t);
  }
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).find((f) => f.endsWith('.json'))!;
  type Ev = { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } };
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Ev[];
  rmSync(dir, { recursive: true, force: true });
  const runEvents = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((p, q) => p.ts - q.ts).slice(warm);
  const inTimed = (e: Ev) => runEvents.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && inTimed(e));
  const role = (node: string, op: string) =>
    /reorder/i.test(op) || /reorder/i.test(node) ? 'layout (NCHWc reorders)'
    : node.includes(':dW') ? 'dW (weight gradients)'
    : node.includes(':dX') ? 'dX (input gradients)'
    : /:d[A-Z]/.test(node) ? 'other backward (named)'
    : /^[A-Za-z]+(_\d+)?$/.test(node) || /^[A-Za-z]+_token_\d+/.test(node) ? 'backward glue (unnamed: transposes, BN-backward reductions, grad sums)'
    : 'forward (incl. train-mode BN, loss)';
  const per = (key: (node: string, op: string) => string) => {
    const acc = new Map<string, { ms: number; count: number }>();
    for (const e of nodes) {
      const node = e.name.slice(0, -'_kernel_time'.length);
      const k = key(node, e.args?.op_name ?? '?');
      const v = acc.get(k) ?? { ms: 0, count: 0 };
      v.ms += e.dur / 1000 / runs;
      v.count += 1 / runs;
      acc.set(k, v);
    }
    return [...acc].sort((p, q) => q[1].ms - p[1].ms).map(([k, v]) => ({ key: k, ms: Math.round(v.ms * 10) / 10, nodes: Math.round(v.count) }));
  };
  const total = nodes.reduce((t, e) => t + e.dur / 1000, 0) / runs;
  // Layer shapes of the convs, for the per-node table.
  const convs = new Map(trainer.modelGraph.nodes.filter((q) => q.op === 'Conv').map((q) => {
    const [, c, h, w] = trainer.modelGraph.shape(q.inputs[0]!) as number[];
    const ws = trainer.modelGraph.params.get(q.params[0]!)!.shape;
    const st = (q.attrs['strides'] as number[] | undefined)?.[0] ?? 1;
    const grp = (q.attrs['group'] as number | undefined) ?? 1;
    return [q.name, `${c}→${ws[0]} ${ws[2]}×${ws[3]}/s${st}${grp > 1 ? ` g${grp}` : ''} @${h}×${w}`];
  }));
  const out = {
    model: name, size: s, batch: n, mode, threads, runs, nchwc: block,
    wallMsPerRun: wall.slice(warm).map((v) => Math.round(v)),
    kernelMsPerRun: Math.round(total),
    byRole: per((node, op) => role(node, op)),
    byOp: per((_, op) => op).slice(0, 15),
    byRoleAndOp: per((node, op) => `${role(node, op).split(' ')[0]} ${op}`).slice(0, 20),
    topNodes: per((node) => node).slice(0, 25).map((r) => ({ ...r, layer: convs.get(r.key.split(':')[0]!) ?? '' })),
    // dW and dX summed per conv layer geometry (all layers with the same shape together).
    convGradsByShape: per((node) => {
      const layer = node.split(':')[0]!;
      const kind = node.includes(':dW') ? 'dW' : node.includes(':dX') ? 'dX' : node.endsWith(':Conv') ? 'fwd' : '';
      return kind && convs.has(layer) ? `${kind} ${convs.get(layer)}` : 'other';
    }).filter((r) => r.key !== 'other').slice(0, 25),
  };
  console.log(JSON.stringify(out, null, 1));
}

// ---- driver ----
const args = process.argv.slice(2);
const opt = (flag: string, dflt: string) => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const ROWS = opt('--rows', 'resnet18@224x16,resnet50d@224x16,efficientnet_b0@224x16,resnet18@32x128').split(',');
const MODES = opt('--modes', 'full,head').split(',') as Mode[];
const WARMUP = Number(opt('--warmup', '2'));
const STEPS = Number(opt('--steps', '5'));
const REPS = Number(opt('--reps', '1'));
const THREADS = Number(opt('--threads', '2'));
const TORCH = !args.includes('--no-torch');

function oneShot(cmd: string, argv: string[]): { maxRssMB: number } {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** A lockstep child: one JSON line out per command line in. */
class Peer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private lines: string[] = [];
  private waiting?: (l: string) => void;
  private stderr = '';
  private exited?: number | null;
  constructor(readonly label: string, cmd: string, argv: string[]) {
    const p = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    createInterface({ input: p.stdout }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(l);
      } else this.lines.push(l);
    });
    p.stderr.on('data', (d) => (this.stderr += d));
    p.on('exit', (code) => {
      this.exited = code;
      if (this.waiting && code !== 0) this.waiting('');
    });
  }
  async next<T>(): Promise<T> {
    const l = this.lines.shift() ?? (this.exited !== undefined && this.exited !== 0 ? '' : await new Promise<string>((r) => (this.waiting = r)));
    if (!l) throw new Error(`${this.label} failed:\n${this.stderr}`);
    return JSON.parse(l) as T;
  }
  async send<T>(cmd: string): Promise<T> {
    this.proc.stdin.write(`${cmd}\n`);
    return this.next<T>();
  }
}

interface Job { model: string; size: number; batch: number; mode: Mode }

/** One row: both processes set up (one after the other), then steps alternate tsimm/PyTorch, ABBA. */
async function runRow(j: Job, rep: number): Promise<{ tsimm: Side; torch?: Side }> {
  const a = [j.model, String(j.size), String(j.batch), j.mode, String(WARMUP)];
  const peers: Peer[] = [];
  const ts = new Peer('tsimm', process.execPath, ['--import', 'tsx', import.meta.filename, '--child', ...a, String(THREADS)]);
  await ts.next();
  peers.push(ts);
  let tc: Peer | undefined;
  if (TORCH) {
    tc = new Peer('torch', PYTHON, [TORCH_SCRIPT, ...a, String(STEPS), String(THREADS), '--lockstep']);
    await tc.next();
    peers.push(tc);
  }
  for (let i = 0; i < WARMUP + STEPS; i++) {
    const order = (i + rep) % 2 === 0 ? peers : [...peers].reverse();
    for (const p of order) await p.send('step');
  }
  const [tsimm, torch] = await Promise.all(peers.map((p) => p.send<Side>('end')));
  return { tsimm: tsimm!, ...(torch ? { torch } : {}) };
}

interface Stats {
  meanMs: number;
  p50Ms: number;
  minMs: number;
  maxMs: number;
  imagesPerSecond: number;
  maxRssMB: number;
  setupMs: number;
  firstStepMs: number;
  steps: number;
  firstLoss: number;
}

function stats(sides: Side[], batch: number): Stats {
  const timed = sides.flatMap((s) => s.stepMs.slice(s.warmup));
  const sorted = [...timed].sort((a, b) => a - b);
  const mean = timed.reduce((a, b) => a + b, 0) / timed.length;
  const mid = sorted.length >> 1;
  const p50 = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const r = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
  return {
    meanMs: r(mean), p50Ms: r(p50), minMs: r(sorted[0]!), maxMs: r(sorted.at(-1)!),
    imagesPerSecond: r((1000 * batch) / mean, 2),
    maxRssMB: r(Math.max(...sides.map((s) => s.maxRssMB))),
    setupMs: r(Math.max(...sides.map((s) => s.setupMs))),
    firstStepMs: r(Math.max(...sides.map((s) => s.stepMs[0]!))),
    steps: timed.length,
    firstLoss: r(sides[0]!.losses[0]!, 4),
  };
}

interface Row {
  model: string;
  size: number;
  batch: number;
  mode: Mode;
  params: number;
  trainable: number;
  tsimm: Stats;
  torch?: Stats & { params: number; trainable: number };
  ratio?: { meanMs: number; p50Ms: number; pairedMedian: number; pairedRange: number[]; maxRss: number };
}

const jobs: Job[] = ROWS.flatMap((spec) => {
  const m = /^([\w.]+)@(\d+)x(\d+)$/.exec(spec);
  if (!m) throw new Error(`row "${spec}" is not MODEL@SIZExBATCH`);
  return MODES.map((mode) => ({ model: m[1]!, size: Number(m[2]), batch: Number(m[3]), mode }));
});

const log = (s: string) => process.stderr.write(`${s}\n`);
const t0 = performance.now();
const srcAtStart = srcTrainHash();
const bare = {
  tsimmMB: oneShot(process.execPath, ['--import', 'tsx', import.meta.filename, '--bare']).maxRssMB,
  ...(TORCH ? { torchMB: oneShot(PYTHON, [TORCH_SCRIPT, '--bare']).maxRssMB } : {}),
};
log(`bare processes: node+tsimm+ort ${bare.tsimmMB.toFixed(0)} MB${TORCH ? `, python+torch ${bare.torchMB!.toFixed(0)} MB` : ''}`);

const runs = jobs.map(() => ({ tsimm: [] as Side[], torch: [] as Side[] }));
const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
for (let rep = 0; rep < REPS; rep++) {
  for (const [i, j] of jobs.entries()) {
    const r = await runRow(j, rep + i);
    runs[i]!.tsimm.push(r.tsimm);
    if (r.torch) runs[i]!.torch.push(r.torch);
    const desc = (side: Side) => `${mean(side.stepMs.slice(side.warmup)).toFixed(0)} ms/step, peak ${side.maxRssMB.toFixed(0)} MB, loss ${side.losses[0]!.toFixed(3)}→${side.losses.at(-1)!.toFixed(3)}`;
    log(`rep ${rep + 1} ${j.model}@${j.size}x${j.batch} ${j.mode}: tsimm ${desc(r.tsimm)}${r.torch ? ` | torch ${desc(r.torch)}` : ''} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
}

const rows: Row[] = jobs.map((j, i) => {
  const ts = runs[i]!.tsimm;
  const tsimm = stats(ts, j.batch);
  const row: Row = { ...j, params: ts[0]!.params, trainable: ts[0]!.trainable, tsimm };
  if (TORCH) {
    const tc = runs[i]!.torch;
    // Paired ratio: step k of tsimm against step k of PyTorch, which ran right next to it.
    const pairs = ts.flatMap((t, r) => t.stepMs.slice(t.warmup).map((v, k) => v / tc[r]!.stepMs[tc[r]!.warmup + k]!)).sort((p, q) => p - q);
    const torch = stats(tc, j.batch);
    if (tc[0]!.params !== row.params) throw new Error(`${j.model}: PyTorch has ${tc[0]!.params} parameters, tsimm ${row.params}`);
    if (tc[0]!.trainable !== row.trainable) throw new Error(`${j.model} ${j.mode}: PyTorch trains ${tc[0]!.trainable} parameters, tsimm ${row.trainable}`);
    row.torch = { ...torch, params: tc[0]!.params, trainable: tc[0]!.trainable };
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    row.ratio = {
      meanMs: r3(tsimm.meanMs / torch.meanMs), p50Ms: r3(tsimm.p50Ms / torch.p50Ms),
      pairedMedian: r3(pairs[pairs.length >> 1]!), pairedRange: [r3(pairs[0]!), r3(pairs.at(-1)!)],
      maxRss: r3(tsimm.maxRssMB / torch.maxRssMB),
    };
  }
  return row;
});

function gitHead(): string | undefined {
  if (!existsSync(join(here, '..', '.git'))) return process.env['TSIMM_BENCH_SOURCE']; // a copied tree (see README)
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src/train'], { cwd: join(here, '..'), encoding: 'utf8' }).stdout.trim();
  return `${r.stdout.trim()}${dirty ? ' + uncommitted src/train changes' : ''}`;
}

function srcTrainHash(): string {
  const dir = join(here, '..', 'src', 'train');
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex').slice(0, 12);
}

const fmt = (v: number, d = 0) => v.toFixed(d);
const lines = [
  '| model | input | batch | mode | trainable params | tsimm ms/step mean (p50) | PyTorch ms/step mean (p50) | ratio mean (p50) | paired ratio median [min–max] | tsimm img/s | PyTorch img/s | tsimm peak RSS MB | PyTorch peak RSS MB | RSS ratio |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) =>
    [
      r.model, `${r.size}×${r.size}`, r.batch, r.mode === 'full' ? 'full, train BN' : 'head only', r.trainable.toLocaleString('en-US'),
      `${fmt(r.tsimm.meanMs)} (${fmt(r.tsimm.p50Ms)})`,
      r.torch ? `${fmt(r.torch.meanMs)} (${fmt(r.torch.p50Ms)})` : '–',
      r.ratio ? `${fmt(r.ratio.meanMs, 2)} (${fmt(r.ratio.p50Ms, 2)})` : '–',
      r.ratio ? `${fmt(r.ratio.pairedMedian, 2)} [${fmt(r.ratio.pairedRange[0]!, 2)}–${fmt(r.ratio.pairedRange[1]!, 2)}]` : '–',
      fmt(r.tsimm.imagesPerSecond, 1), r.torch ? fmt(r.torch.imagesPerSecond, 1) : '–',
      fmt(r.tsimm.maxRssMB), r.torch ? fmt(r.torch.maxRssMB) : '–', r.ratio ? fmt(r.ratio.maxRss, 2) : '–',
    ].join(' | ').replace(/^/, '| ').replace(/$/, ' |'),
  ),
];
console.log(lines.join('\n'));

const date = new Date().toISOString().slice(0, 10);
const result = {
  kind: 'train',
  date: new Date().toISOString(),
  machine: machineInfo(THREADS),
  torch: TORCH ? { python: PYTHON, script: 'bench/tools/torch_train.py', threads: THREADS } : undefined,
  protocol: {
    warmup: WARMUP, steps: STEPS, reps: REPS,
    recipe: 'SGD lr 0.01 momentum 0.9 weight decay 1e-4 (rank >= 2), label smoothing 0.1, random weights and batch; full = all params, train-mode BN; head = classifier only, frozen modules with running-stat BN',
    timing: 'per row one tsimm and one PyTorch child process, set up one after the other, then taking turns step by step (ABBA order); warm-up steps untimed (tsimm: the first creates the ORT session); paired ratio = tsimm step k / PyTorch step k; peak RSS = maxRSS of each child',
  },
  bareRssMB: bare,
  // Which training engine was measured (src/train is changing): sha256 of its sources, first 12 hex digits.
  srcTrain: srcAtStart,
  ...(srcTrainHash() !== srcAtStart ? { warning: 'src/train changed during the run: rows measured different engines' } : {}),
  git: gitHead(),
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('TSIMM_'))),
  wallSeconds: Math.round((performance.now() - t0) / 1000),
  rows,
};
if (!args.includes('--no-save')) {
  const dir = join(here, 'results', 'vm');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${date}-train${opt('--tag', '') ? `-${opt('--tag', '')}` : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  log(`wrote ${file} (${result.wallSeconds} s)`);
}
