/** `tsimm report`: bench results turned into the seed pages' tables and plots, as Markdown + SVG. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { BenchRow, MachineInfo } from '../tasks/bench.js';
import { buildReport, readBenchResults } from '../tasks/report.js';
import { loadSeeds } from '../tasks/verify.js';
import { InputError } from '../weights/tensor.js';
import { required, UsageError, type Command } from './args.js';
import { checkInputFile, checkOutputDir } from './paths.js';
import { out } from './options.js';

export const report: Command = {
  usage: 'RESULTS.json... -o DIR',
  summary: "Turn bench results into the seed pages' tables and plots (accuracy vs latency, FLOPs, params) as Markdown + SVG.",
  options: {
    output: { type: 'string', short: 'o', arg: 'DIR', help: 'output directory (report.md and SVG plots)' },
  },
  async run(p, v) {
    if (!p.length) throw new UsageError('expected one or more bench result files');
    const dir = checkOutputDir(required(v, 'output', 'the report directory'), '--output');
    const rows: BenchRow[] = [];
    let machine: MachineInfo | undefined;
    for (const f of p) {
      if (extname(f) !== '.json') throw new UsageError(`${f} is not a .json results file`);
      const r = readBenchResults(checkInputFile(f, 'results file'));
      if ('skipped' in r) {
        process.stderr.write(`tsimm report: skipped ${f}: ${r.skipped}\n`);
        continue;
      }
      rows.push(...r.rows);
      machine ??= r.machine;
    }
    if (!rows.length) throw new InputError(`none of the ${p.length} files holds bench results (tsimm bench writes them)`);
    mkdirSync(dir, { recursive: true });
    const r = buildReport(rows, machine!, loadSeeds());
    writeFileSync(join(dir, 'report.md'), `${r.markdown}\n`);
    for (const [name, svg] of Object.entries(r.svgs)) writeFileSync(join(dir, name), svg);
    out(`${join(dir, 'report.md')}${Object.keys(r.svgs).length ? ` and ${Object.keys(r.svgs).length} SVG plots` : ''}`);
    return 0;
  },
};
