/**
 * A reader for the YAML the deploy manifests and args.yaml use: block mappings and sequences by indentation,
 * plain/quoted scalars, JSON-style flow lists, comments. It throws on anything else (anchors, multi-line
 * scalars, flow maps), so a manifest that drifts beyond it fails loudly rather than being half-read.
 */
type Y = null | boolean | number | string | Y[] | { [k: string]: Y };

interface Line {
  indent: number;
  text: string;
  n: number;
}

function scalar(s: string, n: number): Y {
  const t = s.trim();
  if (t.startsWith('[')) {
    try {
      return JSON.parse(t) as Y;
    } catch {
      throw new Error(`line ${n}: only JSON-style flow lists are read: ${t}`);
    }
  }
  if (t.startsWith('{') || t.startsWith('&') || t.startsWith('*') || t === '|' || t === '>' || t === '>-' || t === '|-') throw new Error(`line ${n}: unsupported YAML: ${t}`);
  if (t.startsWith('"')) return JSON.parse(t) as string;
  if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
  if (t === 'null' || t === '~' || t === '') return null;
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

/** `key: value` split at the first ': ' outside quotes (or a trailing ':'). */
function keyValue(text: string): [string, string] | undefined {
  const m = /^("[^"]*"|'[^']*'|[^"'\s][^:]*?):(\s+(.*))?$/.exec(text);
  if (!m) return undefined;
  return [m[1]!.replace(/^["']|["']$/g, ''), m[3] ?? ''];
}

function parseBlock(lines: Line[], i: number, indent: number): [Y, number] {
  const first = lines[i]!;
  if (first.text.startsWith('- ') || first.text === '-') {
    const out: Y[] = [];
    while (i < lines.length && lines[i]!.indent === indent && (lines[i]!.text.startsWith('- ') || lines[i]!.text === '-')) {
      const l = lines[i]!;
      const rest = l.text.slice(2);
      if (!rest.trim()) {
        const [v, j] = parseBlock(lines, i + 1, lines[i + 1]!.indent);
        out.push(v);
        i = j;
      } else if (keyValue(rest) && !rest.startsWith('"') && !rest.startsWith('[')) {
        // "- key: v" starts a mapping indented at the dash + 2.
        const sub: Line[] = [{ indent: indent + 2, text: rest, n: l.n }];
        let j = i + 1;
        while (j < lines.length && lines[j]!.indent > indent) sub.push(lines[j++]!);
        out.push(parseBlock(sub, 0, indent + 2)[0]);
        i = j;
      } else {
        out.push(scalar(rest, l.n));
        i++;
      }
    }
    return [out, i];
  }
  const out: { [k: string]: Y } = {};
  while (i < lines.length && lines[i]!.indent === indent) {
    const l = lines[i]!;
    const kv = keyValue(l.text);
    if (!kv) throw new Error(`line ${l.n}: expected "key: value": ${l.text}`);
    const [k, v] = kv;
    if (k in out) throw new Error(`line ${l.n}: duplicate key ${k}`);
    if (v.trim()) {
      out[k] = scalar(v, l.n);
      i++;
    } else if (i + 1 < lines.length && (lines[i + 1]!.indent > indent || (lines[i + 1]!.indent === indent && lines[i + 1]!.text.startsWith('- ')))) {
      const [val, j] = parseBlock(lines, i + 1, lines[i + 1]!.indent);
      out[k] = val;
      i = j;
    } else {
      out[k] = null;
      i++;
    }
  }
  if (i < lines.length && lines[i]!.indent > indent) throw new Error(`line ${lines[i]!.n}: unexpected indentation`);
  return [out, i];
}

export function parseYaml(text: string): Y {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, k) => {
    if (raw.includes('\t')) throw new Error(`line ${k + 1}: tab in YAML`);
    const noComment = raw.replace(/\s+#.*$/, '').replace(/^\s*#.*$/, '');
    if (!noComment.trim() || noComment.trim() === '---') return;
    lines.push({ indent: noComment.search(/\S/), text: noComment.trim(), n: k + 1 });
  });
  if (!lines.length) return null;
  const [v, i] = parseBlock(lines, 0, lines[0]!.indent);
  if (i !== lines.length) throw new Error(`line ${lines[i]!.n}: not read (indentation?)`);
  return v;
}
