/** `tsimm verify`: every seed model's published params/FLOPs against ours, each difference explained or flagged. */
import { formatVerify, loadSeeds, summarize, verifySeeds, DEFAULT_SEEDS } from '../tasks/verify.js';
import { str, type Command } from './args.js';
import { json, out } from './options.js';

export const verify: Command = {
  usage: '[PATTERN] [--seeds FILE] [--json]',
  summary: "Compare every seed model's published params/FLOPs with ours; explain each difference.",
  options: {
    seeds: { type: 'string', arg: 'FILE', help: `seed table (default ${DEFAULT_SEEDS})` },
    json: { type: 'boolean', help: 'print JSON rows' },
  },
  async run(p, v) {
    const seeds = loadSeeds(str(v, 'seeds'));
    const pattern = p[0] ? new RegExp(`^${p[0].replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i') : undefined;
    const rows = verifySeeds(seeds, pattern ? (n) => pattern.test(n) : undefined);
    if (!rows.length) {
      process.stderr.write(`tsimm verify: error: no seed model matches "${p[0]}"\n`);
      return 1;
    }
    out(v['json'] ? json({ rows, summary: summarize(rows) }) : formatVerify(rows));
    return rows.some((r) => r.status === 'unexplained') ? 1 : 0;
  },
};
