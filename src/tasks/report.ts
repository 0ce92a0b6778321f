/**
 * `tsimm report`: bench results → the seed pages' tables and plots (accuracy vs latency, FLOPs and params),
 * as Markdown and SVG. Accuracy is the seed pages' published top-1 (data/seed-models.json); latency is ours.
 */
import type { BenchRow, MachineInfo } from './bench.js';
import { createModel } from '../model.js';
import type { SeedRow } from './verify.js';
import { readFileSync } from 'node:fs';
import { InputError } from '../weights/tensor.js';

/**
 * One results file for `report`: today's `tsimm bench` output ({ machine, rows }), or the earlier per-model
 * layout ({ model, inputSize, machine, results: [{ batch, meanMs, ... }] }). Other JSON (bench/load.ts's memory
 * results) is `{ skipped: reason }`; unreadable files throw naming the file.
 */
export function readBenchResults(file: string): { rows: BenchRow[]; machine: MachineInfo } | { skipped: string } {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file} is not readable JSON (${(e as Error).message})`);
  }
  const o = (j ?? {}) as Record<string, unknown>;
  const m = (o['machine'] ?? {}) as Record<string, unknown>;
  const machine: MachineInfo = {
    cpu: String(m['cpu'] ?? 'unknown CPU'),
    cores: Number(m['cores'] ?? 0),
    isa: Array.isArray(m['isa']) ? (m['isa'] as string[]) : [],
    os: String(m['os'] ?? ''),
    node: String(m['node'] ?? ''),
    onnxruntime: String(m['onnxruntime'] ?? (m['ort'] as Record<string, string> | undefined)?.['node'] ?? ''),
    executionProvider: String(m['executionProvider'] ?? 'cpu'),
    threads: Number(m['threads'] ?? m['cores'] ?? 0),
  };
  const isRow = (r: unknown) => typeof r === 'object' && r !== null && typeof (r as BenchRow).model === 'string' && Number.isFinite((r as BenchRow).batch) && Number.isFinite((r as BenchRow).meanMs);
  if (Array.isArray(o['rows'])) {
    const rows = o['rows'] as BenchRow[];
    if (!rows.some(isRow)) return { skipped: 'its "rows" are not latency results (no model, batch and meanMs)' };
    if (!rows.every(isRow)) throw new InputError(`${file}: "rows" holds entries without model, batch and meanMs`);
    return { rows: rows.map((r) => ({ ...r, precision: r.precision ?? 'fp32' })), machine };
  }
  if (typeof o['model'] === 'string' && Array.isArray(o['results'])) {
    const size = (Array.isArray(o['inputSize']) ? o['inputSize'] : [224, 224]) as [number, number];
    const rows = (o['results'] as Record<string, number>[]).map((r) => ({
      model: o['model'] as string,
      precision: 'fp32' as const,
      batch: r['batch']!,
      inputSize: size,
      cropSize: size[0],
      resizeShort: size[0],
      runs: r['runs'] ?? 0,
      meanMs: r['meanMs']!,
      p50Ms: r['p50Ms'] ?? r['meanMs']!,
      p95Ms: r['p95Ms'] ?? r['meanMs']!,
      imagesPerSecond: r['imagesPerSecond'] ?? r['imagesPerS'] ?? 0,
      gflopsPerSecond: r['gflopsPerSecond'] ?? r['gflopsPerS'] ?? 0,
    }));
    if (!rows.every(isRow)) throw new InputError(`${file}: "results" holds entries without batch and meanMs`);
    return { rows, machine };
  }
  return { skipped: 'not bench latency results (no "rows"; tsimm bench writes them)' };
}

export interface Point {
  label: string;
  x: number;
  y: number;
}

/** A minimal, dependency-free SVG scatter plot with labelled points. */
export function scatterSvg(title: string, xLabel: string, yLabel: string, points: Point[], logX = false): string {
  const W = 720;
  const H = 480;
  const m = { l: 70, r: 20, t: 40, b: 55 };
  const tx = (v: number) => (logX ? Math.log10(v) : v);
  const xs = points.map((p) => tx(p.x));
  const ys = points.map((p) => p.y);
  const pad = (lo: number, hi: number) => (hi > lo ? [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05] : [lo - 1, hi + 1]);
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs)) as [number, number];
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys)) as [number, number];
  const px = (v: number) => m.l + ((tx(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (v: number) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const ticks = (lo: number, hi: number, n = 5) => Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    ...ticks(x0, x1).map((t) => {
      const v = logX ? 10 ** t : t;
      const X = m.l + ((t - x0) / (x1 - x0)) * (W - m.l - m.r);
      return `<line x1="${X}" y1="${H - m.b}" x2="${X}" y2="${H - m.b + 5}" stroke="black"/><text x="${X}" y="${H - m.b + 18}" text-anchor="middle">${v < 10 ? v.toFixed(2) : v.toFixed(0)}</text>`;
    }),
    ...ticks(y0, y1).map((t) => `<line x1="${m.l - 5}" y1="${py(t)}" x2="${m.l}" y2="${py(t)}" stroke="black"/><text x="${m.l - 8}" y="${py(t) + 4}" text-anchor="end">${t.toFixed(1)}</text>`),
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}${logX ? ' (log scale)' : ''}</text>`,
    `<text transform="translate(18 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    ...points.map((p) => `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4" fill="#3367d6"/><text x="${(px(p.x) + 6).toFixed(1)}" y="${(py(p.y) - 6).toFixed(1)}" fill="#333">${esc(p.label)}</text>`),
    '</svg>',
  ];
  return parts.join('\n');
}

export interface Report {
  markdown: string;
  svgs: Record<string, string>;
}

export function buildReport(rows: BenchRow[], machine: MachineInfo, seeds: Record<string, SeedRow>): Report {
  const models = [...new Set(rows.map((r) => r.model))];
  const info = models.map((name) => {
    const c = createModel(name).counts();
    const seed = seeds[name];
    const lat = (b: number, p = 'fp32') => rows.find((r) => r.model === name && r.batch === b && r.precision === p)?.meanMs;
    return { name, top1: seed?.top1 === undefined ? undefined : seed.top1 * 100, params: c.params / 1e6, gflops: c.flops / 1e9, lat };
  });
  const batches = [...new Set(rows.map((r) => r.batch))].sort((a, b) => a - b);
  const precisions = [...new Set(rows.map((r) => r.precision))];
  const cols = precisions.flatMap((p) => batches.map((b) => ({ p, b })));
  const table = [
    `| Model | Top-1 (seed) | Params (M) | FLOPs (G) | ${cols.map((c) => `${c.p.toUpperCase()} bs=${c.b} (ms)`).join(' | ')} |`,
    `|${' --- |'.repeat(4 + cols.length)}`,
    ...info.map((i) => `| ${i.name} | ${i.top1?.toFixed(2) ?? '-'} | ${i.params.toFixed(2)} | ${i.gflops.toFixed(2)} | ${cols.map((c) => i.lat(c.b, c.p)?.toFixed(2) ?? '-').join(' | ')} |`),
  ];
  const withAcc = info.filter((i) => i.top1 !== undefined);
  const svgs: Record<string, string> = {};
  if (withAcc.length) {
    const b1 = batches[0]!;
    svgs['accuracy-vs-latency.svg'] = scatterSvg(`Top-1 vs latency (fp32, batch ${b1}, ${machine.cpu})`, `latency (ms)`, 'top-1 (%)', withAcc.filter((i) => i.lat(b1)).map((i) => ({ label: i.name, x: i.lat(b1)!, y: i.top1! })));
    svgs['accuracy-vs-flops.svg'] = scatterSvg('Top-1 vs FLOPs', 'GFLOPs (2 x MACs)', 'top-1 (%)', withAcc.map((i) => ({ label: i.name, x: i.gflops, y: i.top1! })), true);
    svgs['accuracy-vs-params.svg'] = scatterSvg('Top-1 vs parameters', 'params (M)', 'top-1 (%)', withAcc.map((i) => ({ label: i.name, x: i.params, y: i.top1! })), true);
  }
  const markdown = [
    '# Benchmark report',
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores (${machine.isa.join(' ')}), ONNX Runtime ${machine.onnxruntime} ${machine.executionProvider} EP, ${machine.threads} threads.`,
    'Top-1 is the seed pages\' published accuracy; params and FLOPs are counted from our graphs; latency is measured here.',
    '',
    ...table,
    '',
    ...Object.keys(svgs).map((f) => `![${f}](${f})`),
  ].join('\n');
  return { markdown, svgs };
}
