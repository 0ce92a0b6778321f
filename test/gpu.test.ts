/**
 * Devices: the WebGPU EP (on Chromium's SwiftShader, a CPU Vulkan driver, where no GPU is) matches the CPU EP
 * model by model; the fp16 graph; and the one-line errors of a device that cannot be used.
 *
 * SwiftShader compiles every shader on the CPU (about 5 s for ResNet-18, 12 s for a ResNet-50-like net on
 * 2 cores), so the default set is one model per family at 32×32, batch 2; TSIMM_GPU_TEST_ALL=1 adds ResNet-50-D,
 * ResNeXt-50 and SE-ResNeXt-50.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../src/cli/args.js';
import { DEVICE_OPTIONS, deviceFrom } from '../src/cli/device.js';
import { createModel } from '../src/model.js';
import { hasVulkanLoader, resolveDevice, unavailableReason } from '../src/runtime/device.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { InputError } from '../src/weights/tensor.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';
import { NO_SWIFTSHADER, SWIFTSHADER_ENV } from './helpers/chromium.js';
import { describeOrSkip } from './helpers/skip.js';
import { compare, type Fp16Result, type ModelResult } from './helpers/webgpu-child.js';


const FAMILIES = ['resnet18', 'res2net50_26w_4s', 'resnest14d', 'regnetx_002', 'efficientnet_b0'];
const MORE = process.env['TSIMM_GPU_TEST_ALL'] ? ['resnet50d', 'resnext50_32x4d', 'seresnext50_32x4d'] : [];

function child(config: object, env: NodeJS.ProcessEnv): { code: number; out: { results: ModelResult[]; fp16?: Fp16Result }; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO, 'test/helpers/webgpu-child.ts'), JSON.stringify(config)], {
    env,
    encoding: 'utf8',
    timeout: 240_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return { code: r.status!, out: JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
}

describeOrSkip('the WebGPU EP on SwiftShader matches the CPU EP', NO_SWIFTSHADER, () => {
  let run: ReturnType<typeof child>;
  before(() => {
    run = child({ models: [...FAMILIES, ...MORE], size: 32, batch: 2, fp16: 'resnet18' }, SWIFTSHADER_ENV);
  });

  for (const name of [...FAMILIES, ...MORE]) {
    it(name, () => {
      const r = run.out.results.find((x) => x.model === name)!;
      // Measured 5e-7 .. 2.5e-6 (relative to max|logit|): float32 summation order, nothing more.
      assert.ok(r.rel < 1e-4, `${name}: max|webgpu - cpu| = ${r.maxAbs} against max|cpu| = ${r.maxRef} (rel ${r.rel})`);
      assert.equal(r.top1Agree, 2);
    });
  }

  it('an fp16 graph needs shader-f16: SwiftShader has none, and says so in one line; a GPU adapter agrees with fp32', () => {
    const f = run.out.fp16!;
    if (f.error) {
      assert.match(f.error, /^InputError: device webgpu: this WebGPU adapter has no shader-f16/);
      assert.doesNotMatch(f.error, /\n/);
    } else {
      assert.ok(f.rel! < 2e-2, `fp16 rel ${f.rel}`);
      assert.equal(f.top1Agree, 2);
    }
  });

  it('allowCpuFallback runs the fp16 graph on the CPU with one warning, once', () => {
    const r = child({ models: [], size: 32, batch: 2, fp16: 'resnet18', fallback: true }, SWIFTSHADER_ENV);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('tsimm: warning:'));
    if (r.out.fp16!.error === undefined && warnings.length === 0) return; // an adapter with shader-f16: nothing to fall back from
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /device webgpu: .*shader-f16.*running on the CPU instead/);
    assert.equal(r.out.fp16!.top1Agree, 2);
  });
});

describe('devices that cannot be used: one line with the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsimm-gpu-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const tiny = ['resnet18', '--size', '32', '--batch', '1', '--min-runs', '1', '--min-seconds', '0', '--warmup', '0', '--no-save'];

  it('cuda without onnxruntime-node\'s CUDA EP names the install flag', async (t) => {
    const reason = unavailableReason('cuda');
    if (!reason) return t.skip('this onnxruntime-node has its CUDA EP installed');
    const model = createModel('resnet18', { inputSize: 32 }).initWeights();
    await assert.rejects(model.createSession({ device: 'cuda' }), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /^device cuda: .*--onnxruntime-node-install=cuda12/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });

  it('webgpu with VK_ICD_FILENAMES naming a missing file says which file (a child process: the loader reads it at start)', () => {
    const missing = join(dir, 'no-such-icd.json');
    const env = { ...SWIFTSHADER_ENV, VK_ICD_FILENAMES: missing, TSIMM_DEVICE: 'webgpu' };
    const r = runCli(dir, ['bench', ...tiny], env);
    assert.equal(r.code, 1, r.stderr);
    // Dawn prints its own warnings to stderr; ours is the command's one error line.
    const line = r.stderr.split('\n').filter((l) => l.startsWith('tsimm bench: error:'));
    assert.equal(line.length, 1, r.stderr);
    assert.match(line[0]!, new RegExp(`device webgpu: no WebGPU adapter: VK_ICD_FILENAMES names ${missing}, which does not exist; point it at a driver manifest`));
  });

  it('webgpu with no Vulkan loader on the library path names the loader and the package', (t) => {
    const { LD_LIBRARY_PATH: _, VK_ICD_FILENAMES: __, ...rest } = process.env;
    if (hasVulkanLoader({})) return t.skip('this machine has a system Vulkan loader');
    const r = runCli(dir, ['bench', ...tiny], { ...rest, TSIMM_DEVICE: 'webgpu' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^tsimm bench: error: device webgpu: no WebGPU adapter: no Vulkan loader \(libvulkan\.so\.1\) on the library path; install it \(apt-get install libvulkan1\)/m);
  });

  it('TSIMM_DEVICE and deviceFrom take cpu, webgpu, cuda only', () => {
    const saved = process.env['TSIMM_DEVICE'];
    try {
      process.env['TSIMM_DEVICE'] = 'gpu';
      assert.throws(() => resolveDevice(), /TSIMM_DEVICE="gpu" is no device; set it to one of cpu, webgpu, cuda/);
      delete process.env['TSIMM_DEVICE'];
      assert.equal(resolveDevice(), 'cpu');
    } finally {
      if (saved === undefined) delete process.env['TSIMM_DEVICE'];
      else process.env['TSIMM_DEVICE'] = saved;
    }
    assert.deepEqual(deviceFrom({ device: 'webgpu', 'allow-cpu-fallback': true }), { device: 'webgpu', allowCpuFallback: true });
    assert.deepEqual(deviceFrom({}), {});
    assert.throws(() => deviceFrom({ device: 'gpu' }), (e: Error) => e instanceof UsageError && /--device must be one of cpu, webgpu, cuda/.test(e.message));
    assert.deepEqual(Object.keys(DEVICE_OPTIONS), ['device', 'allow-cpu-fallback']);
  });
});

describe('the fp16 graph (fp32 in and out, fp16 weights and compute)', () => {
  it('has float32 inputs and outputs, and agrees with fp32 on the CPU EP', async () => {
    const model = createModel('resnet18', { inputSize: 64 }).initWeights();
    const half = await createSession(model.toOnnx({ float16: true }), { threads: 1 });
    const full = await createSession(model.toOnnx(), { threads: 1 });
    try {
      for (const m of [...half.inputMetadata, ...half.outputMetadata]) assert.ok(m.isTensor && m.type === 'float32', `${m.name} is float32`);
      const x = { shape: [4, 3, 64, 64], data: Float32Array.from({ length: 4 * 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37)) };
      const y = (await runSession(half, x, ['logits']))['logits']!;
      assert.ok(y.data instanceof Float32Array);
      const c = compare((await runSession(full, x, ['logits']))['logits']!.data, y.data, 4);
      // The CPU EP computes fp16 nodes in fp32 behind casts: this is the weights' rounding (measured 5e-4).
      assert.ok(c.rel < 5e-3, `rel ${c.rel}`);
      assert.equal(c.top1Agree, 4);
    } finally {
      await half.release();
      await full.release();
    }
  });
});
