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
  /** Other names for this option (timm's train.py spellings), shown in --help. */
  aliases?: string[];
  /** A string option that may stand alone: its value is the next word only when that names an existing path. */
  optionalValue?: boolean;
  /** The option takes this many words (timm's `--input-size 3 224 224`), joined with commas. */
  nargs?: number;
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

/** A number option within [min, max]. */
export function num(v: Values, key: string, min = -Infinity, max = Infinity): number | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const x = Number(s);
  if (!Number.isFinite(x) || x < min || x > max) throw new UsageError(`--${key} must be a number in [${min}, ${max}], got "${s}"`);
  return x;
}

/** Comma-separated numbers (exactly `count` of them when given). */
export function numbers(v: Values, key: string, count?: number): number[] | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const xs = s.split(',').map((t) => Number(t.trim()));
  if (xs.some((x) => !Number.isFinite(x)) || (count !== undefined && xs.length !== count)) {
    throw new UsageError(`--${key} must be ${count ?? 'a list of'} comma-separated numbers, got "${s}"`);
  }
  return xs;
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(v: Values, key: string, allowed: readonly T[]): T | undefined {
  const x = str(v, key);
  if (x !== undefined && !allowed.includes(x as T)) throw new UsageError(`--${key} must be one of ${allowed.join(', ')}`);
  return x as T | undefined;
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
