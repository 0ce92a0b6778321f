/** Shared pieces of the command line: the command shape, usage errors, option parsing helpers. */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  arg?: string;
  help: string;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  usage: string;
  summary: string;
  options: Record<string, OptionSpec>;
  run(positionals: string[], values: Values): Promise<number>;
}

export function str(v: Values, key: string): string | undefined {
  const x = v[key];
  return typeof x === 'string' ? x : undefined;
}

export function int(v: Values, key: string, min = 1): number | undefined {
  const x = str(v, key);
  if (x === undefined) return undefined;
  const n = Number(x);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${key} must be an integer ≥ ${min}, got "${x}"`);
  return n;
}

export function required(v: Values, key: string, why: string): string {
  const x = str(v, key);
  if (x === undefined) throw new UsageError(`--${key} is required: ${why}`);
  return x;
}

/** Progress and logs: stderr, and only when it is a terminal (clean pipes, quiet CI). */
export function log(message: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${message}\n`);
}
