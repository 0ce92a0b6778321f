/**
 * The parsers of untrusted bytes under mutation (test/helpers/fuzz.ts): a short run of 1,000 inputs per parser
 * here; `npx tsx bench/fuzz.ts` runs the long one (10,000+ each) and commits its result.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fuzzTarget, mutate, TARGETS } from './helpers/fuzz.js';
import { parseNpy } from '../src/weights/npy.js';
import { loadSafetensors } from '../src/node/safetensors.js';
import { InputError } from '../src/weights/tensor.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const RUNS = Number(process.env['TSIMM_FUZZ_RUNS'] ?? 1000);

describe('fuzzed parsers: only typed one-line errors, no hangs, no header-sized allocations', () => {
  for (const t of TARGETS) {
    it(`${t.name}: ${RUNS} mutated inputs from ${t.seeds.join(', ')}`, async () => {
      const r = await fuzzTarget(t, RUNS, 14, dir);
      assert.equal(r.inputs, RUNS + t.seeds.length);
      assert.deepEqual(r.failures.map((f) => `${f.kind} (${f.seed}): ${f.detail}`), []);
      assert.equal(r.crashes + r.hangs + r.oversize, 0);
      // Mutations must reach past the first check, or the run proves little.
      assert.ok(r.accepted > t.seeds.length && r.accepted < r.inputs, `accepted ${r.accepted} of ${r.inputs}`);
    });
  }

  it('mutate is deterministic and changes its input', () => {
    const seed = Uint8Array.from({ length: 100 }, (_, i) => i);
    const ops = [{ k: 'u32' as const, at: 3, v: 0xffffffff, head: true }, { k: 'cut' as const, at: 90, head: false }];
    const a = mutate(seed, ops);
    assert.deepEqual(a, mutate(seed, ops));
    assert.equal(a.length, 90);
    assert.deepEqual([...a.subarray(3, 7)], [255, 255, 255, 255]);
  });
});

describe('headers that claim more than the file holds are refused before allocating', () => {
  it('safetensors: a header length of 2^40, a tensor of 2^40 elements', () => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(2n ** 40n);
    writeFileSync(join(dir, 'a.safetensors'), Buffer.concat([len, Buffer.from('{}')]));
    assert.throws(() => loadSafetensors(join(dir, 'a.safetensors')), (e: unknown) => e instanceof InputError && /header length \d+ exceeds the file/.test(e.message));
    const h = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [1 << 20, 1 << 20], data_offsets: [0, 4] } }));
    const l = Buffer.alloc(8);
    l.writeBigUInt64LE(BigInt(h.length));
    writeFileSync(join(dir, 'b.safetensors'), Buffer.concat([l, h, Buffer.alloc(4)]));
    assert.throws(() => loadSafetensors(join(dir, 'b.safetensors')), /has 4 bytes for shape \[1048576, 1048576\]/);
  });

  it('npy: a shape of 10^11 elements in a 200-byte file, and a negative dimension', () => {
    const npy = (shape: string) => {
      const header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`.padEnd(117) + '\n';
      return Uint8Array.from([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8, ...Buffer.from(header), ...new Uint8Array(64)]);
    };
    assert.throws(() => parseNpy(npy('(100000000000,)')), /is truncated: shape \(100000000000\) needs 400000000000 data bytes/);
    assert.throws(() => parseNpy(npy('(-4, 4)')), /bad \.npy shape/);
  });
});
