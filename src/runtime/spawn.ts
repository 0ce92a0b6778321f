/** Worker threads on one of our modules, from the build (.js) or from the TypeScript sources (tests, tsx). */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * `file` is a sibling of the module at `from` (its import.meta.url), named without extension. Run from the
 * sources, a worker does not inherit tsx's loader, so it registers it first.
 */
export function spawnWorker(from: string, file: string, o: WorkerOptions = {}): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${file}.js`, from), o);
  const api = import.meta.resolve('tsx/esm/api');
  const url = new URL(`./${file}.ts`, from).href;
  return new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); });`, { ...o, eval: true });
}
