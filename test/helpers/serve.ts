/** `tsimm serve` as a child process, as a user or a container runs it: started, waited for, stopped by signal. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './fixtures.js';

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM, then the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Start `tsimm serve ARGS --port 0` and resolve once it prints its ready line — or its listening line, before the
 * models load, with `until: 'listening'` (rejects if it exits first).
 */
export function startServe(args: string[], timeoutMs = 120_000, until: 'ready' | 'listening' = 'ready', env: NodeJS.ProcessEnv = process.env): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO, 'src/cli/main.ts'), 'serve', ...args, '--port', '0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tsimm serve did not get ready in ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    const check = () => {
      const m = (until === 'ready' ? /ready: (http:\/\/[^\s/]+)/ : /listening on (http:\/\/[^\s/]+)/).exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      resolve({
        url: m[1]!,
        child,
        stdout: () => out,
        stderr: () => err,
        exited,
        stop: (signal = 'SIGTERM') => {
          if (child.exitCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`tsimm serve exited with ${code} before it was ready:\n${err}`));
    });
  });
}
