/** Run the tsimm CLI from the sources as a child process, the way a user runs it (own cwd and env). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './fixtures.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(cwd: string, args: string[], env: NodeJS.ProcessEnv = process.env): CliResult {
  // tsx is resolved from the repo: the command runs in a scratch directory.
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO, 'src/cli/main.ts'), ...args], { cwd, env, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
