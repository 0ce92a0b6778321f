/**
 * Checkpoint load time and peak RSS for a ResNet-50-sized checkpoint in each format (benchmark, not a test).
 * Each format loads in a fresh process, so peak RSS is that format's own. Needs /usr/bin/python3 with torch to
 * write the .pth/.pdparams files. Usage: npx tsx bench/load.ts   → prints JSON, writes bench/results/<host>/.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel } from '../src/model.js';
import { saveSafetensors } from '../src/weights/safetensors.js';

if (process.argv[2] === '--child') {
  const [, , , name, file] = process.argv;
  const t0 = performance.now();
  const m = await createModel(name!).loadCheckpoint(file!);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, params: m.parameters().length }));
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
  const baseline = JSON.parse(spawnSync(process.execPath, ['--import', 'tsx', '-e', 'console.log(JSON.stringify({ maxRssMB: process.resourceUsage().maxRSS / 1024 }))'], { encoding: 'utf8' }).stdout);
  const results = Object.entries(files).map(([format, file]) => {
    const runs = [0, 1, 2].map(() => JSON.parse(spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', name, file], { encoding: 'utf8' }).stdout));
    const best = runs.sort((a, b) => a.ms - b.ms)[0];
    return { format, fileMB: +(statSync(file).size / 1e6).toFixed(1), loadMs: +best.ms.toFixed(0), peakRssMB: +Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0) };
  });
  const report = {
    what: `load ${name} (25.6 M params, 102 MB fp32) into a model, best of 3 fresh processes; peak RSS of the whole process`,
    baselineProcessRssMB: +baseline.maxRssMB.toFixed(0),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
    date: new Date().toISOString(),
    results,
  };
  const out = join('bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${report.date.slice(0, 10)}-load.json`), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
