import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSeeds, summarize, verifySeeds } from '../src/tasks/verify.js';

const seeds = loadSeeds();
const rows = verifySeeds(seeds);

describe('tsimm verify (all 70 seed rows, and timm\'s published counts of the newer families)', () => {
  it('covers every seed row', () => {
    assert.equal(rows.filter((r) => !seeds[r.model]!.seed?.startsWith('timm-0.9.16/results/')).length, 70);
    assert.deepEqual(rows.map((r) => r.model).sort(), Object.keys(seeds).sort());
  });

  for (const r of rows) {
    it(`${r.model}: ${r.status}`, () => {
      assert.notEqual(r.status, 'unexplained', JSON.stringify(r));
      assert.notEqual(r.status, 'not implemented');
      for (const c of [r.params!, r.flops!]) {
        if (c.status === 'match') assert.ok(Math.abs(c.diff) <= 0.005);
        else assert.ok(c.reason && c.reason.length > 20, 'a difference carries its reason');
      }
    });
  }

  it('explains grouped-conv rows by the reconstructed Paddle 1.x counter, not by a table', () => {
    const wsl = rows.find((r) => r.model === 'ResNeXt101_32x48d_wsl')!;
    assert.ok(wsl.params!.ours > 828e6 && wsl.params!.seed < 457e6);
    assert.match(wsl.params!.reason!, /model_stat.*456\.20 M/);
    const r50 = rows.find((r) => r.model === 'ResNet50')!;
    assert.equal(r50.status, 'match');
  });

  it('detects swapped seed rows by cross-matching', () => {
    const fake = {
      A_ResNet50: { ...seeds['ResNet50']!, mparams: 44.55 },
      A_ResNet101: { ...seeds['ResNet101']!, mparams: 25.56 },
    };
    // Same architectures under other names: reuse the registry's ResNet50/ResNet101 by renaming seeds.
    const renamed = verifySeeds({ ResNet50: fake.A_ResNet50, ResNet101: fake.A_ResNet101 });
    for (const r of renamed) assert.match(r.params!.reason!, /swapped/);
  });

  it('attributes each documented seed error to its cause', () => {
    const reason = (m: string, f: 'params' | 'flops') => rows.find((r) => r.model === m)![f]!.reason ?? '';
    assert.match(reason('Res2Net50_vd_26w_4s', 'params'), /swapped with Res2Net50_14w_8s/);
    assert.match(reason('EfficientNetB0', 'params'), /skips depthwise convs and biases.*5\.096 M/);
    assert.match(reason('RegNetX_4GF', 'flops'), /pycls/);
    assert.match(reason('resnest50d', 'flops'), /no fixed convention/);
    assert.match(reason('ResNet34_vd', 'flops'), /typo/);
  });

  it('prints a summary line', () => {
    assert.match(summarize(rows), /^verify: \d+ seed models: \d+ match, \d+ differ with the reason given, 0 unexplained/);
  });
});
