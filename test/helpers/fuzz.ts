/**
 * Mutation fuzzing of every parser of untrusted bytes, from real seed files (test/fuzz-seeds, written by
 * test/tools/make_fuzz_seeds.py with PyTorch, numpy and PIL). fast-check generates the mutations (bit flips,
 * interesting integers over length fields, numbers in text headers, cuts, inserts, duplicated and deleted runs).
 *
 * An input passes when the parser returns, or throws the typed one-line InputError; anything else is a crash.
 * An input that takes over 2 s is a hang. A result holding more bytes than 4x the input (float32 widened from
 * uint8 at most) means an allocation was sized from a header rather than the file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseIdx, readIdx } from '../../src/data/idx.js';
import { decodeImage } from '../../src/data/preprocess.js';
import { loadPdparams, readCheckpoint } from '../../src/node/checkpoint.js';
import { parseNpy } from '../../src/weights/npy.js';
import { loadSafetensors } from '../../src/node/safetensors.js';
import { InputError } from '../../src/weights/tensor.js';
import { loadTorch } from '../../src/node/checkpoint.js';
import { REPO } from './fixtures.js';
import { HttpError, inferResponse, parseInferRequest, splitBody, type ModelSpec } from '../../src/serve/protocol.js';
import { multipartFile } from '../../src/serve/multipart.js';

export const SEEDS = join(REPO, 'test/fuzz-seeds');

export interface Target {
  name: string;
  seeds: string[];
  /** Parse the bytes (written to `file` first for the file-based readers); returns the bytes it produced. */
  parse(bytes: Uint8Array, file: string): unknown;
  /** The most output bytes an input may produce (default 4x the input: float32 widened from uint8 at most). */
  maxOut?: (inputBytes: number) => number;
  /** The typed errors that count as a clean refusal (default: InputError). */
  refusal?: (e: unknown) => boolean;
}

/** The server's requests: a small model (3x4x4 in, 5 classes); a 4xx HttpError is the protocol's clean refusal. */
const SPEC: ModelSpec = { name: 'fuzz', version: '1', input: { name: 'input', shape: [3, 4, 4] }, output: { name: 'logits', classes: 5 }, maxBatch: 4, labels: ['a', 'b', 'c', 'd', 'e'], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const httpRefusal = (e: unknown) => e instanceof HttpError && e.status >= 400 && e.status < 500;
/** Parse a request and build its response, as the server does (logits of the right size). */
function serveRequest(body: Buffer, headerLength?: string): number {
  const { json, binary } = splitBody(body, headerLength);
  const r = parseInferRequest(json, binary, SPEC);
  inferResponse(SPEC, r, new Float32Array(r.n * SPEC.output.classes).map((_, i) => Math.sin(i)));
  return r.data.byteLength;
}

const MAX_PIXELS = 1 << 22;
const tensorMapBytes = (m: unknown) => [...(m as Map<string, { data: Float32Array }>).values()].reduce((n, t) => n + t.data.byteLength, 0);

export const TARGETS: Target[] = [
  { name: 'safetensors', seeds: ['model.safetensors'], parse: (b, f) => (writeFileSync(f, b), tensorMapBytes(loadSafetensors(f))) },
  { name: 'torch-zip', seeds: ['torch-zip.pth'], parse: (b, f) => (writeFileSync(f, b), tensorMapBytes(loadTorch(f))) },
  { name: 'torch-legacy', seeds: ['torch-legacy.pth'], parse: (b, f) => (writeFileSync(f, b), tensorMapBytes(loadTorch(f))) },
  { name: 'pdparams', seeds: ['paddle-p2.pdparams', 'paddle-p4.pdparams'], parse: (b, f) => (writeFileSync(f, b), tensorMapBytes(loadPdparams(f))) },
  {
    // Format sniffing first (safetensors / torch zip / legacy / pickle), so one format mutated to look like another.
    name: 'checkpoint',
    seeds: ['model.safetensors', 'torch-zip.pth', 'torch-legacy.pth', 'paddle-p2.pdparams', 'paddle-p4.pdparams'],
    parse: (b, f) => (writeFileSync(f, b), tensorMapBytes(readCheckpoint(f).tensors)),
  },
  { name: 'idx', seeds: ['images-idx3-ubyte', 'labels-idx1-ubyte', 'float-idx2'], parse: (b) => parseIdx(b, 'input', { maxBytes: 1 << 20 }).data.byteLength },
  { name: 'idx-file', seeds: ['images-idx3-ubyte', 'labels-idx1-ubyte', 'float-idx2'], parse: async (b, f) => (writeFileSync(f, b), (await readIdx(f, { maxBytes: 1 << 20 })).data.byteLength) },
  {
    name: 'idx-gzip',
    seeds: ['images-idx3-ubyte.gz'],
    parse: async (b, f) => (writeFileSync(f, b), (await readIdx(f, { maxBytes: 1 << 20 })).data.byteLength),
    // Inflated values legitimately outgrow the file; the bound is the byte limit the reader was given.
    maxOut: () => 1 << 20,
  },
  { name: 'npy', seeds: ['x-f4.npy', 'x-u1.npy'], parse: (b) => parseNpy(b, 'input').data.byteLength },
  {
    name: 'image',
    seeds: ['image.jpg', 'image.png', 'image.gif', 'image.webp', 'image.tiff', 'gray.png'],
    parse: async (b) => (await decodeImage(b, { exifRotate: true, maxPixels: MAX_PIXELS })).data.byteLength,
    // Compressed pixels legitimately outgrow the file: the bound is the pixel limit, as PIL's bomb check.
    maxOut: () => 3 * MAX_PIXELS,
  },
  { name: 'oip-json', seeds: ['infer.json'], parse: (b) => serveRequest(Buffer.from(b)), refusal: httpRefusal },
  {
    // The seed's first 4 bytes (u32 LE) stand for the Inference-Header-Content-Length header.
    name: 'oip-binary',
    seeds: ['infer-binary.bin'],
    parse: (b) => serveRequest(Buffer.from(b).subarray(4), b.length >= 4 ? String(Buffer.from(b).readUInt32LE(0)) : undefined),
    refusal: httpRefusal,
  },
  { name: 'multipart', seeds: ['form.multipart'], parse: (b) => multipartFile(Buffer.from(b), 'multipart/form-data; boundary=XyZ').byteLength, refusal: httpRefusal },
];

type Op =
  | { k: 'flip'; at: number; bit: number; head: boolean }
  | { k: 'byte'; at: number; v: number; head: boolean }
  | { k: 'u32'; at: number; v: number; head: boolean }
  | { k: 'u64'; at: number; v: bigint; head: boolean }
  | { k: 'number'; at: number; v: string; head: boolean }
  | { k: 'cut'; at: number; head: boolean }
  | { k: 'insert'; at: number; bytes: Uint8Array; head: boolean }
  | { k: 'dup'; at: number; len: number; to: number; head: boolean }
  | { k: 'delete'; at: number; len: number; head: boolean };

const at = fc.nat();
const head = fc.boolean();
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }), head }),
  fc.record({ k: fc.constant('byte' as const), at, v: fc.integer({ min: 0, max: 255 }), head }),
  fc.record({ k: fc.constant('u32' as const), at, v: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff), head }),
  fc.record({ k: fc.constant('u64' as const), at, v: fc.constantFrom(0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n), head }),
  fc.record({ k: fc.constant('number' as const), at, v: fc.constantFrom('0', '-1', '1.5', '4294967296', '9007199254740993', '99999999999999999999', '1e308', 'NaN', '[]', '"x"'), head }),
  fc.record({ k: fc.constant('cut' as const), at, head }),
  fc.record({ k: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }), head }),
  fc.record({ k: fc.constant('dup' as const), at, len: fc.integer({ min: 1, max: 64 }), to: fc.nat(), head }),
  fc.record({ k: fc.constant('delete' as const), at, len: fc.integer({ min: 1, max: 32 }), head }),
);

/** Seed index and 1-6 mutations. */
export const inputArb = fc.tuple(fc.nat(), fc.array(opArb, { minLength: 1, maxLength: 6 }));

/** Apply mutations; `head` ops land in the first 64 bytes, where the length fields are. */
export function mutate(seed: Uint8Array, ops: Op[]): Uint8Array {
  let b = Uint8Array.from(seed);
  for (const op of ops) {
    if (!b.length) break;
    const pos = op.at % (op.head ? Math.min(b.length, 64) : b.length);
    const view = new DataView(b.buffer);
    switch (op.k) {
      case 'flip':
        b[pos]! ^= 1 << op.bit;
        break;
      case 'byte':
        b[pos] = op.v;
        break;
      case 'u32':
        if (pos + 4 <= b.length) view.setUint32(pos, op.v, true);
        break;
      case 'u64':
        if (pos + 8 <= b.length) view.setBigUint64(pos, op.v, true);
        break;
      case 'number': {
        // Replace the next run of ASCII digits (a JSON or .npy header field) with another number.
        let s = pos;
        while (s < b.length && !(b[s]! >= 0x30 && b[s]! <= 0x39)) s++;
        if (s === b.length) break;
        let e = s;
        while (e < b.length && b[e]! >= 0x30 && b[e]! <= 0x39) e++;
        const v = new TextEncoder().encode(op.v);
        const n = new Uint8Array(b.length - (e - s) + v.length);
        n.set(b.subarray(0, s));
        n.set(v, s);
        n.set(b.subarray(e), s + v.length);
        b = n;
        break;
      }
      case 'cut':
        b = b.slice(0, pos);
        break;
      case 'insert': {
        const n = new Uint8Array(b.length + op.bytes.length);
        n.set(b.subarray(0, pos));
        n.set(op.bytes, pos);
        n.set(b.subarray(pos), pos + op.bytes.length);
        b = n;
        break;
      }
      case 'dup': {
        const run = b.slice(pos, pos + op.len);
        const to = op.to % b.length;
        b = Uint8Array.from([...b.subarray(0, to), ...run, ...b.subarray(to)]);
        break;
      }
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, pos), ...b.subarray(pos + op.len)]);
        break;
    }
  }
  return b;
}

export interface Failure {
  target: string;
  seed: string;
  kind: 'crash' | 'hang' | 'oversize' | 'multiline';
  detail: string;
  /** The input, base64, to reproduce. */
  input: string;
}

export interface TargetResult {
  target: string;
  inputs: number;
  /** Inputs the parser accepted (the rest threw InputError). */
  accepted: number;
  crashes: number;
  hangs: number;
  oversize: number;
  maxMs: number;
  failures: Failure[];
}

/** Run `runs` mutated inputs through one target, deterministically from `seed`. */
export async function fuzzTarget(t: Target, runs: number, seed: number, scratch: string, hangMs = 2000): Promise<TargetResult> {
  const seeds = t.seeds.map((s) => ({ name: s, bytes: new Uint8Array(readFileSync(join(SEEDS, s))) }));
  const file = join(scratch, `fuzz-${t.name}`);
  const r: TargetResult = { target: t.name, inputs: 0, accepted: 0, crashes: 0, hangs: 0, oversize: 0, maxMs: 0, failures: [] };
  const samples = fc.sample(inputArb, { numRuns: runs, seed });
  // The unmutated seeds first: each must parse.
  const inputs = [...seeds.map((s) => ({ s, bytes: s.bytes })), ...samples.map(([i, ops]) => ({ s: seeds[i % seeds.length]!, bytes: mutate(seeds[i % seeds.length]!.bytes, ops) }))];
  for (const [n, { s, bytes }] of inputs.entries()) {
    r.inputs++;
    const fail = (kind: Failure['kind'], detail: string) => {
      if (r.failures.length < 20) r.failures.push({ target: t.name, seed: s.name, kind, detail, input: Buffer.from(bytes).toString('base64') });
    };
    const t0 = performance.now();
    try {
      const out = (await t.parse(bytes, file)) as number;
      r.accepted++;
      if (out > (t.maxOut?.(bytes.length) ?? 4 * bytes.length + 1024)) {
        r.oversize++;
        fail('oversize', `${out} bytes of tensors from a ${bytes.length}-byte input`);
      }
    } catch (e) {
      if (n < seeds.length) {
        r.crashes++;
        fail('crash', `the unmutated seed does not parse: ${(e as Error).message}`);
      } else if (!(t.refusal ?? ((x: unknown) => x instanceof InputError))(e)) {
        r.crashes++;
        fail('crash', `${(e as Error).name}: ${(e as Error).message}\n${(e as Error).stack?.split('\n').slice(1, 4).join('\n')}`);
      } else if ((e as Error).message.includes('\n')) fail('multiline', (e as Error).message);
    }
    const ms = performance.now() - t0;
    r.maxMs = Math.max(r.maxMs, ms);
    if (ms > hangMs) {
      r.hangs++;
      fail('hang', `${ms.toFixed(0)} ms`);
    }
  }
  return r;
}
