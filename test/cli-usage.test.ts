/**
 * Issue 20, the CLI and library items, as a user meets them (the CLI as a child process, real files): a
 * checkpoint's classifier is never silently replaced by a random one, every usage error is one line with close
 * suggestions only, errors share one prefix, `tsimm version`, and no npm warning before every `npx tsimm`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { closeWords } from '../src/cli/parse.js';
import { fashionMnistDir } from '../src/data/idx.js';
import { preprocessImage, resolvePreprocess } from '../src/data/preprocess.js';
import { createModel } from '../src/model.js';
import { closestNames } from '../src/models/index.js';
import { classify } from '../src/tasks/classify.js';
import { readNpy, writeNpy } from '../src/node/npy.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-usage-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tsimm = (...args: string[]) => runCli(dir, args);
const S = 32;
/** A 10-class resnet18 checkpoint (a fine-tuned model) and a run directory holding it with its config.json. */
let ten: string;
let run: string;

before(async () => {
  const m = createModel('resnet18', { inputSize: S, numClasses: 10 }).initWeights(5);
  ten = join(dir, 'ten.safetensors');
  saveSafetensors(ten, m.stateDict());
  run = join(dir, 'run');
  mkdirSync(run);
  saveSafetensors(join(run, 'best.safetensors'), m.stateDict());
  const classNames = Array.from({ length: 10 }, (_, i) => `garment${i}`);
  const preprocess = { size: [S, S], cropPct: 1, cropMode: 'center', interpolation: 'bilinear', backend: 'pil', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], exifRotate: false, maxPixels: 1e8 };
  writeFileSync(join(run, 'config.json'), JSON.stringify({ model: 'resnet18', num_classes: 10, in_chans: 3, input_size: [3, S, S], class_names: classNames, preprocess }));
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 30, b: 60 } } }).png().toFile(join(dir, 'x.png'));
});

describe('issue 20.1: a checkpoint whose classifier disagrees never runs a random head', () => {
  it('loadCheckpoint of a 10-class checkpoint into a 1000-class model fails, naming numClasses and --num-classes', () => {
    assert.throws(() => createModel('resnet18', { inputSize: S }).loadCheckpoint(ten), /has a 10-class classifier \(fc\) but this resnet18 has 1000 classes: create the model with numClasses: 10 \(CLI: --num-classes 10\)/);
    // An explicit numClasses equal to the registry's is not a request for a new head either.
    assert.throws(() => createModel('resnet18', { inputSize: S, numClasses: 1000 }).loadCheckpoint(ten), /numClasses: 10/);
  });

  it('createModel(name, { weights: FILE }) takes the class count from the checkpoint, with its weights', () => {
    const m = createModel('resnet18', { inputSize: S, weights: ten });
    assert.equal(m.numClasses, 10);
    const ref = createModel('resnet18', { inputSize: S, numClasses: 10 }).loadCheckpoint(ten);
    assert.deepEqual(m.weights!.get('fc.weight'), ref.weights!.get('fc.weight'));
  });

  it("createModel(name, { weights: RUN }) reads the run's config.json: classes, names, input size, preprocessing", async () => {
    const m = createModel('resnet18', { weights: run });
    assert.equal(m.numClasses, 10);
    assert.deepEqual(m.inputSize, [S, S]);
    assert.deepEqual(m.cfg.inputSize, [3, S, S]);
    assert.deepEqual([m.cfg.mean, m.cfg.std, m.cfg.interpolation, m.cfg.cropPct], [[0.5, 0.5, 0.5], [0.25, 0.25, 0.25], 'bilinear', 1]);
    assert.equal(m.classNames![3], 'garment3');
    const [r] = await classify(m, [join(dir, 'x.png')], { topk: 1 });
    assert.match(r!.predictions![0]!.label, /^garment\d$/);
    assert.throws(() => createModel('resnet34', { weights: run }), /was trained as resnet18 \(its config\.json says so\), not resnet34/);
    // The CLI's --weights takes the run directory too, with the same answer.
    const p = tsimm('predict', 'resnet18', '--weights', run, join(dir, 'x.png'), '--topk', '1', '--json');
    assert.equal(p.code, 0, p.stderr);
    assert.equal(JSON.stringify(p.stdout).includes(r!.predictions![0]!.label), true);
  });

  it('a model created with inputSize: 28 reports [3, 28, 28] in cfg (and the registry default otherwise)', () => {
    assert.deepEqual(createModel('resnet18', { inputSize: 28 }).cfg.inputSize, [3, 28, 28]);
    assert.deepEqual(createModel('resnet18', { inputSize: 28, inChans: 1 }).cfg.inputSize, [1, 28, 28]);
    assert.deepEqual(createModel('resnet18').cfg.inputSize, [3, 224, 224]);
  });

  it('tsimm infer, export and convert with the 10-class checkpoint give 10 classes, as the API does', async () => {
    const x = { shape: [2, 3, S, S], data: Float32Array.from({ length: 2 * 3 * S * S }, (_, i) => Math.sin(i * 0.37)) };
    writeNpy(join(dir, 'x.npy'), x);
    const r = tsimm('infer', 'resnet18', '--weights', ten, '-i', 'x.npy', '-o', 'y.npy');
    assert.equal(r.code, 0, r.stderr);
    const y = readNpy(join(dir, 'y.npy'));
    assert.deepEqual(y.shape, [2, 10]);
    const api = createModel('resnet18', { inputSize: S, weights: ten });
    const expected = (await api.run(x)).logits;
    y.data.forEach((v, i) => assert.ok(Math.abs(v - expected.data[i]!) < 1e-4 * Math.max(1, Math.abs(v)), `logit ${i}: ${v} vs ${expected.data[i]}`));
    const e = tsimm('export', 'resnet18', '--weights', ten, '--size', String(S), '-o', 'ten.onnx');
    assert.equal(e.code, 0, e.stderr);
    assert.equal(JSON.parse(readFileSync(join(dir, 'ten.onnx.json'), 'utf8')).numClasses, 10);
    const c = tsimm('convert', ten, 'ten2.safetensors', '--model', 'resnet18');
    assert.equal(c.code, 0, c.stderr);
    const f = tsimm('export', 'resnet18', '--weights', ten, '--features-only', '--size', String(S), '-o', 'feat.onnx');
    assert.equal(f.code, 0, f.stderr);
    // export --num-classes that disagrees with the checkpoint is an error, not a new head.
    const bad = tsimm('export', 'resnet18', '--weights', ten, '--num-classes', '5', '--size', String(S), '-o', 'bad.onnx');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^tsimm export: error: .*has a 10-class classifier .* has 5 classes/);
    assert.equal(existsSync(join(dir, 'bad.onnx')), false);
  });

  it("the README's batch for trainer.step: built as it shows, at the model's cfg.inputSize, it trains", async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    assert.match(readme, /preprocessImage\(f, pre\)/);
    assert.match(readme, /const batch = \{ shape: \[files\.length, c, h, w\], data \}/);
    // The same lines, on a small model: cfg.inputSize is the real input, so the batch fits.
    const model = createModel('resnet18', { numClasses: 4, inputSize: 40 }).initWeights(1);
    const pre = resolvePreprocess(model.cfg);
    const files = [join(dir, 'x.png'), join(dir, 'x.png')];
    const [c, h, w] = model.cfg.inputSize;
    const data = new Float32Array(files.length * c * h * w);
    for (const [i, f] of files.entries()) data.set(await preprocessImage(f, pre), i * c * h * w);
    const trainer = model.trainer({ lr: 0.01 });
    try {
      const { loss } = await trainer.step({ shape: [files.length, c, h, w], data }, [1, 3]);
      assert.ok(Number.isFinite(loss));
    } finally {
      await trainer.release();
    }
  });
});

describe('issue 20.12: usage errors are one line, with suggestions only when close', () => {
  const oneUsageLine = (r: { code: number; stderr: string; stdout: string }, cmd: string, re: RegExp) => {
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^tsimm ${cmd}: error: `));
    assert.match(lines[0]!, re);
    assert.doesNotMatch(r.stderr, /ambiguous|To specify|Did you forget/);
  };

  it('--size -5 is a bad value, not an "ambiguous" option', () => {
    oneUsageLine(tsimm('predict', 'resnet18', 'x.png', '--size', '-5'), 'predict', /--size must be an integer ≥ 1, got "-5"/);
    oneUsageLine(tsimm('predict', 'resnet18', 'x.png', '-k', '-3'), 'predict', /--topk must be an integer ≥ 1, got "-3"/);
  });

  it('an unknown option names the close ones, balanced quotes, no parseArgs text', () => {
    const r = tsimm('predict', 'resnet18', 'x.png', '--topx', '3');
    oneUsageLine(r, 'predict', /unknown option --topx; did you mean --topk\?/);
    oneUsageLine(tsimm('train', 'resnet18', '--smothing', '0.1'), 'train', /unknown option --smothing; did you mean --smoothing\?/);
    oneUsageLine(tsimm('predict', 'resnet18', 'x.png', '--zzzzzz'), 'predict', /^tsimm predict: error: unknown option --zzzzzz \(see tsimm predict --help\)$/);
  });

  it('a missing value and a value on a switch are one line each', () => {
    oneUsageLine(tsimm('predict', 'resnet18', 'x.png', '--size'), 'predict', /--size needs a value \(N\)/);
    oneUsageLine(tsimm('predict', 'resnet18', 'x.png', '--json=yes'), 'predict', /--json is a switch and takes no value/);
  });

  it('model names: close ones suggested, none for a far-off name', () => {
    assert.deepEqual(closestNames('nosuchmodel'), []);
    assert.ok(closestNames('resnt18').includes('resnet18'));
    const far = tsimm('predict', 'nosuchmodel', 'x.png');
    assert.equal(far.code, 1);
    assert.match(far.stderr, /^tsimm predict: error: unknown model "nosuchmodel" \(run `tsimm list` for all names\)\n$/);
    assert.match(tsimm('predict', 'resnt18', 'x.png').stderr, /did you mean resnet18/);
  });

  it('closeWords: near by edit distance or prefix, else nothing', () => {
    assert.deepEqual(closeWords('topx', ['topk', 'batch', 'json']), ['topk']);
    assert.deepEqual(closeWords('zzzz', ['topk', 'batch', 'json']), []);
    assert.deepEqual(closeWords('prdict', ['predict', 'preprocess', 'eval']), ['predict']);
  });
});

describe('issue 20.13: help, version, error prefixes, eval on IDX', () => {
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

  it('bare tsimm is a usage error: help on stderr, exit 2; --help is stdout, exit 0', () => {
    const bare = tsimm();
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /^usage: tsimm <command>/);
    const help = tsimm('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: tsimm <command>/);
    assert.match(help.stdout, /^ {2}version +Print the tsimm version/m);
  });

  it('tsimm version and --version print the package version', () => {
    for (const a of ['version', '--version']) {
      const r = tsimm(a);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${version}\n`);
    }
    const typo = tsimm('verion');
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /^tsimm: error: unknown command "verion"; did you mean version(, verify)?\?/);
  });

  it('every error line has the prefix "tsimm COMMAND: error:"', () => {
    writeFileSync(join(dir, 'bad.png'), 'not an image');
    const p = tsimm('predict', 'resnet18', '--weights', ten, '--size', String(S), join(dir, 'bad.png'));
    assert.equal(p.code, 1);
    for (const line of p.stderr.trimEnd().split('\n')) assert.match(line, /^tsimm predict: error: /);
    assert.match(tsimm('list', 'nomatch').stderr, /^tsimm list: error: no model matches/);
  });

  it('eval on an IDX folder echoes its preprocessing', { skip: fashionMnistDir() ? false : 'dataset-fashion-mnist is not installed (.ci/run installs it)' }, () => {
    const r = tsimm('eval', 'regnetx_002', fashionMnistDir()!, '--weights', join(REPO, 'examples/fashion-mnist/model.safetensors'), '--limit', '64');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {3}preprocess: PIL \w+, size 28x28, crop_pct [\d.]+, crop center, mean [\d./]+, std [\d./]+/m);
    const j = tsimm('eval', 'regnetx_002', fashionMnistDir()!, '--weights', join(REPO, 'examples/fashion-mnist/model.safetensors'), '--limit', '64', '--json');
    assert.deepEqual(JSON.parse(j.stdout).preprocess.size, [28, 28]);
  });
});

describe('issue 20.14: no npm warning before every npx tsimm', () => {
  const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
  it('npm in the repository reads no unknown project config (the .npmrc key is gone)', { skip: npm.status === 0 ? false : 'npm is not on the PATH' }, () => {
    const r = spawnSync('npm', ['exec', '--offline', '--no', '--', 'node', '-e', '0'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Unknown project config/);
    assert.equal(existsSync(join(REPO, '.npmrc')), false);
    assert.match(readFileSync(join(REPO, '.ci/run'), 'utf8'), /^export ONNXRUNTIME_NODE_INSTALL=skip$/m);
  });

  it('npx tsimm version prints the version and nothing on stderr', { skip: npm.status !== 0 ? 'npm is not on the PATH' : existsSync(join(REPO, 'dist/cli/main.js')) ? false : 'dist/ is not built (npm run prepare)' }, () => {
    const r = spawnSync('npx', ['--offline', '--no', 'tsimm', 'version'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
