/** Debian's python3 with torch and numpy, used only to write reference checkpoints in tests. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './fixtures.js';

const PYTHON = process.env['TSIMM_TEST_PYTHON'] ?? '/usr/bin/python3';

function probe(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return r.status === 0 ? false : `${PYTHON} with torch and numpy is not installed (apt-get install python3-torch); .ci/run installs it`;
}

/** Reason to skip, or false when PyTorch is available to write reference checkpoints. */
export const NO_TORCH: string | false = probe();

export function makeCheckpoints(...args: string[]): void {
  const r = spawnSync(PYTHON, [join(REPO, 'test/tools/make_checkpoints.py'), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make_checkpoints.py ${args[0]} failed: ${r.stderr}`);
}
