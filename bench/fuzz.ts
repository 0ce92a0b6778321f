/**
 * The long fuzzing run: 10,000 mutated inputs per parser (or `--runs N`), from test/fuzz-seeds, through
 * test/helpers/fuzz.ts. Writes bench/results/fuzz.json (committed: the last result) and exits 1 on any
 * crash, hang or oversized result.
 *
 *   npx tsx bench/fuzz.ts [--runs 10000] [--seed 1] [--only oip-json,multipart]
 *
 * `--only` reruns those parsers and keeps the other parsers' last results from the file.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzzTarget, TARGETS, type TargetResult } from '../test/helpers/fuzz.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, out: { type: 'string', default: 'bench/results/fuzz.json' }, only: { type: 'string' } } });
const only = values.only?.split(',');
const unknown = only?.filter((n) => !TARGETS.some((t) => t.name === n));
if (unknown?.length) throw new Error(`--only: no parser ${unknown.join(', ')}; parsers: ${TARGETS.map((t) => t.name).join(', ')}`);
const runs = Number(values.runs);
const seed = Number(values.seed);
const scratch = mkdtempSync(join(tmpdir(), 'tsimm-fuzz-'));
const results: (TargetResult & { seconds: number })[] = [];
try {
  for (const t of TARGETS.filter((x) => !only || only.includes(x.name))) {
    const t0 = performance.now();
    const r = await fuzzTarget(t, runs, seed, scratch);
    results.push({ ...r, seconds: Math.round((performance.now() - t0) / 100) / 10, maxMs: Math.round(r.maxMs * 10) / 10 });
    process.stderr.write(`${t.name}: ${r.inputs} inputs, ${r.accepted} accepted, ${r.crashes} crashes, ${r.hangs} hangs, ${r.oversize} oversize, slowest ${r.maxMs.toFixed(1)} ms\n`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
type Row = Omit<TargetResult, 'failures'> & { seconds: number; failures: unknown[]; runs?: number };
const rows: Row[] = results.map((r) => ({ ...r, runs, failures: r.failures.slice(0, 5) }));
if (only && existsSync(values.out!)) {
  // Keep the other parsers' last results (each says how many runs it had).
  const last = JSON.parse(readFileSync(values.out!, 'utf8')) as { runsPerParser: number; parsers: Row[] };
  for (const old of last.parsers) if (!only.includes(old.target)) rows.push({ runs: last.runsPerParser, ...old });
  rows.sort((a, b) => TARGETS.findIndex((t) => t.name === a.target) - TARGETS.findIndex((t) => t.name === b.target));
}
const summary = {
  what: 'mutation fuzzing of the parsers of untrusted bytes (test/helpers/fuzz.ts); pass = returns or throws the typed one-line InputError',
  date: new Date().toISOString(),
  node: process.version,
  runsPerParser: runs,
  seed,
  hangThresholdMs: 2000,
  totals: { inputs: rows.reduce((n, r) => n + r.inputs, 0), crashes: rows.reduce((n, r) => n + r.crashes, 0), hangs: rows.reduce((n, r) => n + r.hangs, 0), oversize: rows.reduce((n, r) => n + r.oversize, 0) },
  parsers: rows,
};
writeFileSync(values.out!, `${JSON.stringify(summary, null, 2)}\n`);
process.stderr.write(`wrote ${values.out}\n`);
process.exitCode = summary.totals.crashes + summary.totals.hangs + summary.totals.oversize ? 1 : 0;
