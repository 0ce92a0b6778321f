/**
 * A command's argv → values and positionals, with every problem as one usage line: timm's option spellings
 * (aliases), `--resume [PATH]`, multi-word options, negative numbers as values, and unknown options with the
 * close names suggested. Node's parseArgs does the parsing; its multi-line messages never reach the user.
 */
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { editDistance } from '../models/registry.js';
import { UsageError, type Command, type Values } from './args.js';

/** Up to three of `candidates` close to `word` (edit distance ≤ a third of its length, or a prefix). */
export function closeWords(word: string, candidates: Iterable<string>, count = 3): string[] {
  const near = Math.max(1, Math.floor(word.length / 3));
  return [...new Set(candidates)]
    .map((c) => ({ c, d: c.startsWith(word) || (word.startsWith(c) && c.length >= 3) ? 0.5 : editDistance(word, c) }))
    .filter((x) => x.d <= near)
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
    .slice(0, count)
    .map((x) => x.c);
}

/** A word that starts like a negative number (-5, -0.5,1,2, -.5): a value, never an option. */
const NUMBER = /^-\.?\d/;

/** Rewrite argv into what parseArgs takes: aliases to their option, `--opt=value` where a value is ambiguous. */
function normalize(args: string[], options: Command['options']): string[] {
  const alias = new Map<string, string>();
  for (const [k, o] of Object.entries(options)) for (const a of o.aliases ?? []) alias.set(a, k);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!;
    if (t === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (!t.startsWith('--')) {
      const short = /^-([a-zA-Z])$/.exec(t)?.[1];
      const long = short ? Object.entries(options).find(([, o]) => o.short === short && o.type === 'string')?.[0] : undefined;
      if (long && args[i + 1] !== undefined && NUMBER.test(args[i + 1]!)) out.push(`--${long}=${args[++i]}`);
      else out.push(t);
      continue;
    }
    const eq = t.indexOf('=');
    const given = t.slice(2, eq < 0 ? undefined : eq);
    const name = alias.get(given) ?? given;
    const spec = options[name];
    const inline = eq < 0 ? undefined : t.slice(eq + 1);
    if (!spec || spec.type !== 'string' || inline !== undefined) {
      out.push(inline === undefined ? `--${name}` : `--${name}=${inline}`);
      continue;
    }
    const next = args[i + 1];
    if (spec.nargs) {
      const words = args.slice(i + 1, i + 1 + spec.nargs);
      if (words.length < spec.nargs || words.some((w) => w.startsWith('--'))) throw new UsageError(`--${given} takes ${spec.nargs} values (${spec.arg ?? 'VALUE'})`);
      out.push(`--${name}=${words.join(',')}`);
      i += spec.nargs;
    } else if (spec.optionalValue) {
      const takes = next !== undefined && !next.startsWith('-') && existsSync(next);
      out.push(`--${name}=${takes ? next : ''}`);
      if (takes) i++;
    } else if (next !== undefined && NUMBER.test(next)) {
      // `--size -5` is a (bad) value, not an option: the command's own check then names the range.
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(`--${name}`);
  }
  return out;
}

/** parseArgs' error → one line in our words (the option named as the user wrote it, close names suggested). */
function usageFrom(e: Error & { code?: string }, options: Command['options']): UsageError {
  const opt = /'(-{1,2}[^' <=]+)/.exec(e.message)?.[1] ?? '';
  const names = Object.entries(options).flatMap(([k, o]) => [k, ...(o.aliases ?? [])]).concat('help');
  const spec = options[opt.replace(/^-+/, '')];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const close = opt.startsWith('--') ? closeWords(opt.slice(2), names).map((n) => `--${n}`) : [];
      return new UsageError(`unknown option ${opt}${close.length ? `; did you mean ${close.join(', ')}?` : ''}`);
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(e.message)) return new UsageError(`${opt} is a switch and takes no value`);
      return new UsageError(`${opt} needs a value${spec?.arg ? ` (${spec.arg})` : ''}`);
    default:
      return new UsageError(e.message.split('\n')[0]!);
  }
}

export function parseCommand(args: string[], command: Command): { positionals: string[]; values: Values } {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [k, o] of Object.entries(command.options)) {
    options[k] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  try {
    const parsed = parseArgs({ args: normalize(args, command.options), options, allowPositionals: true, strict: true });
    return { positionals: parsed.positionals, values: parsed.values as Values };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw usageFrom(e as Error & { code?: string }, command.options);
  }
}
