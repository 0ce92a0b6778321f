/**
 * The long fuzzing run: 10,000 mutated inputs per parser (or `--runs N`), from test/fuzz-seeds, through
 * test/helpers/fuzz.ts. Writes bench/results/fuzz.json (committed: the last result) and exits 1 on any
 * crash, hang or oversized result.
 *
 *   npx tsx bench/fuzz.ts [--runs 10000] [--seed 1]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzzTarget, TARGETS, type TargetResult } from '../test/helpers/fuzz.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, out: { type: 'string', default: 'bench/results/fuzz.json' } } });
const runs = Number(values.runs);
const seed = Number(values.seed);
const scratch = mkdtempSync(join(tmpdir(), 'tsimm-fuzz-'));
const results: (TargetResult & { seconds: number })[] = [];
try {
  for (const t of TARGETS) {
    const t0 = performance.now();
    const r = await fuzzTarget(t, runs, seed, scratch);
    results.push({ ...r, seconds: Math.round((performance.now() - t0) / 100) / 10, maxMs: Math.round(r.maxMs * 10) / 10 });
    process.stderr.write(`${t.name}: ${r.inputs} inputs, ${r.accepted} accepted, ${r.crashes} crashes, ${r.hangs} hangs, ${r.oversize} oversize, slowest ${r.maxMs.toFixed(1)} ms\n`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
const summary = {
  what: 'mutation fuzzing of the parsers of untrusted bytes (test/helpers/fuzz.ts); pass = returns or throws the typed one-line InputError',
  date: new Date().toISOString(),
  node: process.version,
  runsPerParser: runs,
  seed,
  hangThresholdMs: 2000,
  totals: { inputs: results.reduce((n, r) => n + r.inputs, 0), crashes: results.reduce((n, r) => n + r.crashes, 0), hangs: results.reduce((n, r) => n + r.hangs, 0), oversize: results.reduce((n, r) => n + r.oversize, 0) },
  parsers: results.map((r) => ({ ...r, failures: r.failures.slice(0, 5) })),
};
writeFileSync(values.out!, `${JSON.stringify(summary, null, 2)}\n`);
process.stderr.write(`wrote ${values.out}\n`);
process.exitCode = summary.totals.crashes + summary.totals.hangs + summary.totals.oversize ? 1 : 0;
