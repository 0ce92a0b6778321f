/**
 * The model registry: every creatable name, its builder and pretrained configs. Family files register
 * themselves on import; `src/models/index.ts` imports them all.
 */
import type { ModelEntry, PretrainedCfg } from './types.js';

const entries = new Map<string, ModelEntry>();

export function register(entry: ModelEntry): void {
  if (entries.has(entry.name)) throw new Error(`model ${entry.name} registered twice`);
  if (!entry.cfgs.length) throw new Error(`model ${entry.name} has no pretrained config`);
  entries.set(entry.name, entry);
}

/** Thrown for a name that is not registered; the message lists the closest names. */
export class UnknownModelError extends Error {
  constructor(
    readonly requested: string,
    readonly suggestions: string[],
  ) {
    super(`unknown model "${requested}"${suggestions.length ? `; did you mean ${suggestions.join(', ')}?` : ''} (run \`tsimm list\` for all names)`);
    this.name = 'UnknownModelError';
  }
}

export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

export function closestNames(name: string, count = 5): string[] {
  const q = name.toLowerCase();
  // Only close names: a far-off one (nosuchmodel) gets none rather than five unrelated ones.
  const near = Math.max(1, Math.floor(q.length / 4));
  return [...entries.keys()]
    .map((n) => {
      const l = n.toLowerCase();
      // Substring hits rank first (a user typing "resnet50" wants resnet50d too), then edit distance.
      const sub = Math.min(l.length, q.length) >= 3 && (l.includes(q) || q.includes(l));
      const score = sub ? Math.abs(l.length - q.length) * 0.1 : editDistance(q, l);
      return { n, score, ok: sub || editDistance(q, l) <= near };
    })
    .filter((x) => x.ok)
    .sort((a, b) => a.score - b.score || a.n.localeCompare(b.n))
    .slice(0, count)
    .map((x) => x.n);
}

export interface Resolved {
  entry: ModelEntry;
  cfg: PretrainedCfg;
}

/** Resolve `name` or `name.tag` (timm style); a case-insensitive match is accepted when it is unique. */
export function resolveModel(spec: string): Resolved {
  let name = spec;
  let tag: string | undefined;
  if (!entries.has(name) && spec.includes('.')) {
    const dot = spec.indexOf('.');
    name = spec.slice(0, dot);
    tag = spec.slice(dot + 1);
  }
  let entry = entries.get(name);
  if (!entry) {
    const ci = [...entries.values()].filter((e) => e.name.toLowerCase() === name.toLowerCase());
    if (ci.length === 1) entry = ci[0];
  }
  if (!entry) throw new UnknownModelError(spec, closestNames(name));
  const cfg = tag === undefined ? entry.cfgs[0]! : entry.cfgs.find((c) => c.tag === tag);
  if (!cfg) {
    throw new UnknownModelError(spec, entry.cfgs.map((c) => `${entry.name}.${c.tag}`));
  }
  return { entry, cfg };
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i');
}

export interface ListOptions {
  source?: 'timm' | 'paddleclas';
  family?: string;
  /** List every `name.tag` pretrained weight instead of architectures. */
  pretrained?: boolean;
}

/** Names matching a shell-style wildcard (case-insensitive, like timm's `list_models('*resnext*')`). */
export function listModels(pattern = '*', o: ListOptions = {}): string[] {
  const re = globToRegExp(pattern);
  const out: string[] = [];
  for (const e of entries.values()) {
    if (o.source && e.source !== o.source) continue;
    if (o.family && e.family.toLowerCase() !== o.family.toLowerCase()) continue;
    if (o.pretrained) {
      for (const c of e.cfgs) {
        const full = e.source === 'timm' ? `${e.name}.${c.tag}` : e.name;
        if (re.test(full) || re.test(e.name)) out.push(full);
      }
    } else if (re.test(e.name)) {
      out.push(e.name);
    }
  }
  return out.sort((a, b) => a.localeCompare(b));
}

export function allEntries(): ModelEntry[] {
  return [...entries.values()];
}
