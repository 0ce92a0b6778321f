/**
 * Training parity with PyTorch on the reference's grad fixtures, through `tsimm grad` as a user runs it: for every
 * case and both BatchNorm modes, the loss, the logits, every parameter's gradient (norm and probes), the running
 * statistics after the step's forward, and the loss after one SGD step (shared/grad-fixtures/README.md).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gradCases, NO_GRAD_FIXTURES, runGradCase, runningStatErrors } from './helpers/grad-fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsimm-grad-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describeOrSkip('grad fixtures (tsimm grad vs timm on PyTorch)', NO_GRAD_FIXTURES, () => {
  for (const name of NO_GRAD_FIXTURES ? [] : gradCases()) {
    describe(name, () => {
      for (const mode of ['eval', 'train'] as const) {
        it(`${mode} mode: loss, logits, every gradient, running statistics, one SGD step`, (t) => {
          const run = runGradCase(tmp, name, mode);
          const { checks } = run;
          const worst = checks.reduce((a, b) => (b.allowed > a.allowed ? b : a));
          const strictFails = checks.filter((k) => k.strict > 1);
          t.diagnostic(`${checks.length} checks; worst ${worst.what} at ${worst.allowed.toFixed(3)} of tolerance; ${strictFails.length} beyond the README's strict per-tensor tolerance (within the float32 allowance)`);
          for (const k of checks) assert.ok(k.allowed <= 1, `${name} ${mode}: ${k.what} is ${k.allowed.toFixed(2)}× its tolerance (strict ${k.strict.toFixed(2)}×)`);
          if (mode === 'train') for (const e of runningStatErrors(run)) assert.ok(e.diff <= 1e-3 * Math.max(1, e.scale), `${name}: running statistic ${e.key} is ${e.diff} away`);
        });
      }
    });
  }
});
