/**
 * Checkpoint load time and peak RSS for a ResNet-50-sized checkpoint in each format (benchmark, not a test),
 * and "ready to run": build the graph, load safetensors, create the ONNX Runtime session, run batch 1, with
 * peak RSS set against the weights and activations and against ONNX Runtime alone loading the same model.
 * Each measurement runs in a fresh process, so its peak RSS is its own. Needs /usr/bin/python3 with torch to
 * write the .pth/.pdparams files. Usage: npx tsx bench/load.ts   → prints JSON, writes bench/results/<host>/.
 *
 * `npx tsx bench/load.ts --models resnet50d,resnext101_32x16d,efficientnet_b7 [--tag after]`: ready-to-run peak
 * RSS of each model against ONNX Runtime alone on the same exported file (no Python needed); writes
 * bench/results/<host>/<date>-ready-<tag>.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel } from '../src/model.js';
import { runSession, sessionOptions } from '../src/runtime/session.js';
import { saveSafetensors } from '../src/node/safetensors.js';

const peakMB = () => process.resourceUsage().maxRSS / 1024;

if (process.argv[2] === '--ready' || process.argv[2] === '--ready-release') {
  const [, , , name, file] = process.argv;
  const t0 = performance.now();
  const m = createModel(name!);
  const t1 = performance.now();
  m.loadSafetensors(file!);
  const t2 = performance.now();
  const session = await m.createSession({ releaseWeights: process.argv[2] === '--ready-release' });
  const t3 = performance.now();
  await runSession(session, { shape: [1, 3, ...m.inputSize], data: new Float32Array(3 * m.inputSize[0] * m.inputSize[1]) });
  const t4 = performance.now();
  console.log(JSON.stringify({ buildMs: t1 - t0, loadMs: t2 - t1, sessionMs: t3 - t2, firstRunMs: t4 - t3, totalMs: t4 - t0, sinceProcessStartMs: t4, maxRssMB: peakMB() }));
  process.exit(0);
}

if (process.argv[2] === '--ort-only' || process.argv[2] === '--bare') {
  // ONNX Runtime by itself loading the exported file (external data) and running batch 1: its own floor.
  // --bare: the same process without the model, the baseline every peak is measured from.
  const mod = await import('onnxruntime-node');
  const ort = (mod as unknown as { default?: typeof mod }).default ?? mod;
  if (process.argv[2] === '--ort-only') {
    const s = await ort.InferenceSession.create(process.argv[3]!, sessionOptions());
    const size = Number(process.argv[4] ?? 224);
    await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', new Float32Array(3 * size * size), [1, 3, size, size]) });
  }
  console.log(JSON.stringify({ maxRssMB: peakMB() }));
  process.exit(0);
}

if (process.argv[2] === '--child') {
  const [, , , name, file] = process.argv;
  const t0 = performance.now();
  const m = await createModel(name!).loadCheckpoint(file!);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, params: m.parameters().length }));
  process.exit(0);
}

if (process.argv[2] === '--models') {
  // Ready to run per model, against ONNX Runtime alone on the same file: worst of 3 fresh processes each.
  const names = process.argv[3]!.split(',');
  const tag = process.argv[4] === '--tag' ? process.argv[5]! : 'now';
  const dir = mkdtempSync(join(tmpdir(), 'tsimm-ready-'));
  const child = (...a: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, ...a], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  };
  try {
    const bare = Math.min(...[0, 1, 2].map(() => child('--bare').maxRssMB));
    const rows = names.map((name) => {
      const m = createModel(name).initWeights(1);
      const st = join(dir, `${name}.safetensors`);
      saveSafetensors(st, m.stateDict());
      const onnx = join(dir, `${name}.onnx`);
      m.exportOnnx(onnx, { external: true });
      const weightsMB = m.parameters().reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1) * 4, 0) / 1e6;
      const ready = Math.max(...[0, 1, 2].map(() => child('--ready', name, st).maxRssMB)) - bare;
      const ortOnly = Math.max(...[0, 1, 2].map(() => child('--ort-only', onnx, String(m.inputSize[0])).maxRssMB)) - bare;
      const released = Math.max(...[0, 1, 2].map(() => child('--ready-release', name, st).maxRssMB)) - bare;
      rmSync(st);
      rmSync(onnx);
      rmSync(`${onnx}.data`);
      const row = { model: name, weightsMB: +weightsMB.toFixed(0), readyAboveBareMB: +ready.toFixed(0), onnxRuntimeAloneAboveBareMB: +ortOnly.toFixed(0), ratioToOnnxRuntimeAlone: +(ready / ortOnly).toFixed(2), releaseWeightsAboveBareMB: +released.toFixed(0), releaseWeightsRatio: +(released / ortOnly).toFixed(2) };
      process.stderr.write(`${JSON.stringify(row)}\n`);
      return row;
    });
    const report = {
      what: 'ready to run (createModel + loadSafetensors + createSession + one batch-1 run) vs ONNX Runtime alone creating a session on the exported file and running batch 1; peak RSS above a bare process, worst of 3 fresh processes; releaseWeights: the same with createSession({ releaseWeights: true }) (one-shot use, as the CLI)',
      tag,
      bareProcessRssMB: +bare.toFixed(0),
      machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
      date: new Date().toISOString(),
      models: rows,
    };
    const out = join('bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `${report.date.slice(0, 10)}-ready-${tag}.json`), `${JSON.stringify(report, null, 2)}\n`);
    console.log(JSON.stringify(report, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'tsimm-load-'));
const tool = join(import.meta.dirname, '../test/tools/make_checkpoints.py');
try {
  const name = 'ResNet50';
  const m = createModel(name).initWeights(1);
  const st = join(dir, 'model.safetensors');
  saveSafetensors(st, m.stateDict());
  const py = (...a: string[]) => {
    const r = spawnSync('/usr/bin/python3', [tool, ...a], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  };
  py('model', st, dir);
  py('paddle', 'legendary', st, join(dir, 'model.pdparams'), '4', JSON.stringify({ layers: [3, 4, 6, 3] }));
  const files: Record<string, string> = {
    safetensors: st,
    'pth (zip)': join(dir, 'model.pth'),
    'pth (legacy)': join(dir, 'model_legacy.pth'),
    'pth (fp16)': join(dir, 'model_fp16.pth'),
    'pdparams (protocol 4)': join(dir, 'model.pdparams'),
  };
  const child = (...a: string[]) => JSON.parse(spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, ...a], { encoding: 'utf8' }).stdout);
  const baseline = [0, 1, 2].map(() => child('--bare')).sort((a, b) => a.maxRssMB - b.maxRssMB)[0];
  const results = Object.entries(files).map(([format, file]) => {
    const runs = [0, 1, 2].map(() => child('--child', name, file));
    const best = runs.sort((a, b) => a.ms - b.ms)[0];
    return { format, fileMB: +(statSync(file).size / 1e6).toFixed(1), loadMs: +best.ms.toFixed(0), peakRssMB: +Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0) };
  });
  // Ready to run, against what the weights and activations need and against ONNX Runtime alone.
  const readyRuns = [0, 1, 2].map(() => child('--ready', name, st));
  const ready = readyRuns.sort((a, b) => a.totalMs - b.totalMs)[0];
  const exported = join(dir, 'export.onnx');
  m.exportOnnx(exported, { external: true });
  const ortOnly = [0, 1, 2].map(() => child('--ort-only', exported)).sort((a, b) => b.maxRssMB - a.maxRssMB)[0];
  const weightsMB = m.parameters().reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1) * 4, 0) / 1e6;
  const largestActivationMB = Math.max(...[...m.graph.shapes.values()].map((sh) => sh.reduce<number>((a, d) => a * (d === 'N' ? 1 : d), 1) * 4)) / 1e6;
  const aboveBase = Math.max(...readyRuns.map((r) => r.maxRssMB)) - baseline.maxRssMB;
  const readyToRun = {
    what: 'createModel + loadSafetensors + createSession + one batch-1 run, fresh process, best of 3 (times) / worst of 3 (RSS)',
    phasesMs: { build: +ready.buildMs.toFixed(1), load: +ready.loadMs.toFixed(0), session: +ready.sessionMs.toFixed(0), firstRun: +ready.firstRunMs.toFixed(0), total: +ready.totalMs.toFixed(0) },
    sinceProcessStartMs: +ready.sinceProcessStartMs.toFixed(0),
    weightsMB: +weightsMB.toFixed(1),
    largestActivationBatch1MB: +largestActivationMB.toFixed(1),
    peakRssAboveBareProcessMB: +aboveBase.toFixed(0),
    ratioToWeightsPlusActivation: +(aboveBase / (weightsMB + largestActivationMB)).toFixed(2),
    onnxRuntimeAloneAboveBareProcessMB: +(ortOnly.maxRssMB - baseline.maxRssMB).toFixed(0),
  };
  const report = {
    what: `load ${name} (25.6 M params, 102 MB fp32) into a model, best of 3 fresh processes; peak RSS of the whole process`,
    baselineProcessRssMB: +baseline.maxRssMB.toFixed(0),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
    date: new Date().toISOString(),
    results,
    readyToRun,
  };
  const out = join('bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${report.date.slice(0, 10)}-load.json`), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
