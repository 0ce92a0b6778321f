/**
 * Issue 14, "what a new user hit": each item as a user meets it (the CLI as a child process, real files), so
 * that none can come back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createModel } from '../src/model.js';
import { classify } from '../src/tasks/classify.js';
import { readNpy, writeNpy } from '../src/node/npy.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-hard-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tsimm = (...args: string[]) => runCli(dir, args);
const ESC = '\u001b[';
/** A nested `node --test` must not inherit this runner's NODE_TEST_CONTEXT (it would report to us, not print). */
const plainEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const env = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  return env;
};
let ckpt: string;

before(async () => {
  const m = createModel('resnet18', { inputSize: 32 }).initWeights(3);
  ckpt = join(dir, 'r18.safetensors');
  saveSafetensors(ckpt, m.stateDict());
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 30, b: 60 } } }).jpeg().toFile(join(dir, 'ok.jpg'));
});

describe('1. infer refuses inputs that are not [N, 3, H, W]', () => {
  for (const [shape, nhwc] of [[[1, 32, 32, 3], true], [[1, 4, 32, 32], false], [[1, 1, 32, 32], false]] as [number[], boolean][]) {
    it(`refuses [${shape.join(', ')}]${nhwc ? ' and suggests the NHWC → NCHW transpose' : ''}`, () => {
      const n = shape.reduce((a: number, b: number) => a * b, 1);
      const file = `x-${shape.join('x')}.npy`;
      writeNpy(join(dir, file), { shape: [...shape], data: new Float32Array(n) });
      const r = tsimm('infer', 'resnet18', '--weights', ckpt, '--input', file, '--output', 'y.npy');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /infer needs a float32 NCHW batch \[N, 3, H, W\]/);
      if (nhwc) assert.match(r.stderr, /looks NHWC .*transpose\(0, 3, 1, 2\).*\(1, 3, 32, 32\)/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.ok(!existsSync(join(dir, 'y.npy')));
    });
  }
});

describe('2. no silent random weights; loading is synchronous everywhere', () => {
  it('refuses to run, export or classify a model with no weights, naming the ways out', async () => {
    const m = createModel('resnet18', { inputSize: 32 });
    await assert.rejects(classify(m, [join(dir, 'ok.jpg')]), /resnet18 has no weights: load them .*initWeights\(\) to use random weights on purpose/);
    await assert.rejects(m.run({ shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) }), /has no weights/);
    assert.throws(() => m.toOnnx(), /has no weights/);
    assert.throws(() => m.stateDict(), /has no weights/);
    const { calibrate } = await import('../src/tasks/quantize.js');
    await assert.rejects(calibrate(m, []), /resnet18 has no weights/);
    // The explicit choice still works (training from scratch, timing).
    const [r] = await classify(m.initWeights(1), [join(dir, 'ok.jpg')], { topk: 1 });
    assert.equal(r!.predictions!.length, 1);
  });

  it('loadCheckpoint returns the model, like loadSafetensors (no Promise to forget)', async () => {
    const a = createModel('resnet18', { inputSize: 32 }).loadCheckpoint(ckpt);
    const b = createModel('resnet18', { inputSize: 32 }).loadSafetensors(ckpt);
    assert.ok(!(a instanceof Promise));
    assert.equal(a.weights!.get('fc.weight')![5], b.weights!.get('fc.weight')![5]);
    const [r] = await classify(a, [join(dir, 'ok.jpg')], { topk: 1 });
    assert.ok(r!.predictions);
  });
});

describe('3. report reads every committed results file, or skips it by name', () => {
  it('tsimm report bench/results/*/*.json', () => {
    const files: string[] = [];
    for (const m of readdirSync(join(REPO, 'bench/results'), { withFileTypes: true })) {
      if (!m.isDirectory()) continue;
      for (const f of readdirSync(join(REPO, 'bench/results', m.name))) if (f.endsWith('.json')) files.push(join(REPO, 'bench/results', m.name, f));
    }
    assert.ok(files.length > 5);
    const r = tsimm('report', ...files, '-o', 'rep');
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(join(dir, 'rep/report.md'), 'utf8'), /\| resnet50d \|/);
    // Only files that hold no latency results (memory, training, serving, paired-ratio results) are skipped, each named.
    const skipped = r.stderr.trim().split('\n').filter(Boolean);
    assert.ok(skipped.length < files.length);
    for (const line of skipped) {
      const m = /^tsimm report: skipped (\S+\.json): (not bench latency results|its "rows" are not latency results)/.exec(line);
      assert.ok(m, line);
      const j = JSON.parse(readFileSync(m[1]!, 'utf8'));
      assert.ok(!j.rows?.some((x: { meanMs?: number }) => x.meanMs !== undefined) && !(typeof j.model === 'string' && Array.isArray(j.results)), `${m[1]} holds latency rows`);
    }
  });

  it('names a file that is not JSON', () => {
    writeFileSync(join(dir, 'broken.json'), '{"rows": [');
    const r = tsimm('report', 'broken.json', '-o', 'rep2');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\.json is not readable JSON/);
  });
});

describe('4. featuresOnly: featureInfo lists exactly the maps returned', () => {
  it('outIndices [1, 2, 3, 4] → 4 levels and 4 maps, matching channels and reductions', async () => {
    const m = createModel('resnet18', { inputSize: 64, featuresOnly: true, outIndices: [1, 2, 3, 4] }).initWeights(2);
    assert.deepEqual(m.featureInfo.map((f) => f.module), ['layer1', 'layer2', 'layer3', 'layer4']);
    const maps = await m.runFeatures({ shape: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64) });
    assert.equal(maps.length, m.featureInfo.length);
    maps.forEach((t, i) => assert.deepEqual(t.shape, [1, m.featureInfo[i]!.channels, 64 / m.featureInfo[i]!.reduction, 64 / m.featureInfo[i]!.reduction]));
    assert.equal(m.allFeatureInfo.length, 5);
    assert.equal(createModel('resnet18').featureInfo.length, 5);
  });
});

describe('5. tsimm/web has type declarations', () => {
  it('a strict TypeScript consumer of tsimm/web type-checks (no TS7016)', async () => {
    const { buildWeb, buildWebTypes } = await import('../web/build.js');
    const pkg = join(dir, 'consumer/node_modules/tsimm');
    mkdirSync(pkg, { recursive: true });
    cpSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
    const exp = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).exports['./web'];
    await buildWeb(join(pkg, exp.import));
    buildWebTypes(join(pkg, exp.types.replace(/\/web\/tsimm-web\.d\.ts$/, '')));
    // As a real install has them: tsimm's own dependency onnxruntime-node, and the peer the page adds.
    for (const dep of ['onnxruntime-web', 'onnxruntime-node', 'onnxruntime-common']) symlinkSync(join(REPO, 'node_modules', dep), join(dir, 'consumer/node_modules', dep));
    writeFileSync(
      join(dir, 'consumer/main.ts'),
      `import { createSession, preprocessRgba, run, topk, type PreprocessConfig } from 'tsimm/web';\n` +
        `export async function f(c: PreprocessConfig, px: Uint8ClampedArray): Promise<number> {\n` +
        `  const s = await createSession('/m.onnx', { threads: 1 });\n` +
        `  const x: Float32Array = preprocessRgba(px, 2, 2, c);\n` +
        `  return topk(await run(s, x, [1, 3, 2, 2]), 1)[0]!.index;\n}\n`,
    );
    writeFileSync(join(dir, 'consumer/package.json'), '{"type":"module"}');
    writeFileSync(
      join(dir, 'consumer/tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], types: [], skipLibCheck: false, noUncheckedIndexedAccess: true }, files: ['main.ts'] }),
    );
    const r = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'consumer/tsconfig.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});

describe('6. output and input paths are checked first, and explained in words', () => {
  before(() => {
    writeNpy(join(dir, 'x.npy'), { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) });
    mkdirSync(join(dir, 'adir'), { recursive: true });
    writeFileSync(join(dir, 'afile'), 'x');
  });
  const cases: [string, string[], RegExp][] = [
    ['export to a missing directory', ['export', 'resnet18', '--size', '32', '-o', 'nope/m.onnx'], /--output nope\/m\.onnx: the directory nope does not exist/],
    ['export to a directory', ['export', 'resnet18', '--size', '32', '-o', 'adir'], /--output adir is a directory; give a file name, like adir\/resnet18\.onnx/],
    ['infer to a directory', ['infer', 'resnet18', '--weights', 'r18.safetensors', '--input', 'x.npy', '--output', 'adir'], /--output adir is a directory/],
    ['infer from a missing input', ['infer', 'resnet18', '--input', 'gone.npy', '--output', 'y.npy'], /--input gone\.npy: no such file/],
    ['preprocess to a missing directory', ['preprocess', 'ok.jpg', '--model', 'resnet18', '-o', 'nope/x.npy'], /the directory nope does not exist/],
    ['convert to a directory', ['convert', 'r18.safetensors', 'adir', '--model', 'resnet18'], /OUT adir is a directory/],
    ['convert from a missing file', ['convert', 'gone.pth', 'o.safetensors', '--model', 'resnet18'], /IN gone\.pth: no such file/],
    ['quantize to a missing directory (before calibrating)', ['quantize', 'resnet18', '--weights', 'r18.safetensors', '--calib', '.', '-o', 'nope/q.onnx'], /--output nope\/q\.onnx: the directory nope does not exist/],
    ['report of a missing file', ['report', 'gone.json', '-o', 'rep3'], /results file gone\.json: no such file/],
    ['report into an existing file', ['report', 'gone.json', '-o', 'afile'], /--output afile is a file; it must be a directory/],
    ['quantize with a missing --calib directory', ['quantize', 'resnet18', '--weights', 'r18.safetensors', '--size', '32', '--calib', 'nodir', '-o', 'q.onnx'], /cannot read the directory nodir: it does not exist/],
    ['eval of a missing directory', ['eval', 'resnet18', 'nodir', '--weights', 'r18.safetensors'], /cannot read the directory nodir: it does not exist/],
    ['eval with a missing labels file', ['eval', 'resnet18', '.', '--labels', 'gone.txt', '--weights', 'r18.safetensors'], /--labels gone\.txt: no such file/],
  ];
  for (const [what, args, re] of cases) {
    it(what, () => {
      const r = tsimm(...args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /ENOENT|EISDIR|EEXIST|\.tmp-/);
    });
  }
});

describe('7. bench says where its results went, and --output chooses it', () => {
  it('writes the file --output names and prints the path', () => {
    const r = tsimm('bench', 'resnet18', '--size', '32', '--batch', '1', '--warmup', '0', '--min-runs', '1', '--min-seconds', '0', '--threads', '1', '-o', 'b.json');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`results saved to ${join(dir, 'b.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8')).rows[0].model, 'resnet18');
    assert.ok(!existsSync(join(dir, 'bench')), 'nothing under ./bench');
  });
});

describe('8. messages', () => {
  it('an image error is said once, on stderr, with the file named once', () => {
    writeFileSync(join(dir, 'empty.jpg'), '');
    const r = tsimm('predict', 'resnet18', 'empty.jpg', 'ok.jpg', '--weights', ckpt, '--size', '32');
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout, /empty\.jpg/);
    assert.match(r.stdout, /ok\.jpg/);
    assert.equal(r.stderr.match(/empty\.jpg/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /empty\.jpg is empty \(0 bytes\)/);
  });

  it('tells an empty file and a directory apart from an unsupported format', async () => {
    const { decodeImage } = await import('../src/data/preprocess.js');
    const o = { exifRotate: false, maxPixels: 1e8 };
    writeFileSync(join(dir, 'empty.jpg'), '');
    await assert.rejects(decodeImage(join(dir, 'adir'), o), /adir is a directory, not an image/);
    await assert.rejects(decodeImage(join(dir, 'empty.jpg'), o), /is empty \(0 bytes\)/);
  });

  it('refuses --std 0 as a usage error (no NaN%)', () => {
    const r = tsimm('predict', 'resnet18', 'ok.jpg', '--weights', ckpt, '--std', '0,0,0');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--std takes three positive numbers/);
    assert.doesNotMatch(r.stdout, /NaN/);
  });

  it('a malformed labels file names the file and the line', () => {
    mkdirSync(join(dir, 'flat'), { recursive: true });
    writeFileSync(join(dir, 'flat/labels.txt'), 'a.jpg 3\nb.jpg\n');
    const r = tsimm('eval', 'resnet18', 'flat', '--labels', 'flat/labels.txt', '--weights', ckpt);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /flat\/labels\.txt:2: expected "file label"/);
    writeFileSync(join(dir, 'flat/labels.txt'), 'a.jpg cat\n');
    assert.match(tsimm('eval', 'resnet18', 'flat', '--labels', 'flat/labels.txt', '--weights', ckpt).stderr, /labels\.txt:1: "cat" is neither a class index nor an ImageNet wnid/);
  });

  it('eval counts every listed file: evaluated of listed', async () => {
    const cls = join(dir, 'val/n01871265');
    mkdirSync(cls, { recursive: true });
    await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toFile(join(cls, 'a.png'));
    writeFileSync(join(cls, 'b.jpg'), 'broken');
    const r = tsimm('eval', 'resnet18', 'val', '--weights', ckpt, '--size', '32');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: 1 of 2 images evaluated, 1 failed or skipped/);
  });

  it('list and verify with no match exit 1 and say so', () => {
    const l = tsimm('list', 'nomatch');
    assert.equal(l.code, 1);
    assert.match(l.stderr, /no model matches "nomatch"/);
    const v = tsimm('verify', 'nomatch*');
    assert.equal(v.code, 1);
    assert.match(v.stderr, /no seed model matches "nomatch\*"/);
  });

  it('help lines never run together', () => {
    const h = tsimm('predict', '--help').stdout;
    for (const line of h.split('\n').filter((l) => l.startsWith('  --'))) assert.match(line, /^ {2}--\S+(, -\w)?( \S+)?( {2,}\S.*)?$/, line);
    assert.match(h, /--crop-mode center\|squash\|border\n {34}how the image is fit/);
  });

  it('a usage error prints the message and a pointer to --help, not the whole help', () => {
    const r = tsimm('export', 'resnet18');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^tsimm export: error: --output is required.*\(see tsimm export --help\)\n$/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('the export sidecar names the weights used, not the pretrained tag, with --weights', () => {
    const r = tsimm('export', 'resnet18', '--size', '32', '--weights', ckpt, '-o', 'w.onnx');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(readFileSync(join(dir, 'w.onnx.json'), 'utf8'));
    assert.equal(s.tag, null);
    assert.equal(s.weights, ckpt);
  });

  it("pull's error does not suggest --weights (pull has none); predict's does", () => {
    const env = { ...process.env, TSIMM_OFFLINE: '1', HF_HUB_CACHE: join(dir, 'hub'), TSIMM_CACHE: join(dir, 'cache') };
    const p = runCli(dir, ['pull', 'resnet18'], env);
    assert.equal(p.code, 1);
    assert.match(p.stderr, /not in the cache/);
    assert.doesNotMatch(p.stderr, /--weights/);
    const q = runCli(dir, ['predict', 'resnet18', 'ok.jpg'], env);
    assert.match(q.stderr, /not in the cache.*; or pass --weights FILE/);
  });
});

describe('9. test hygiene', () => {
  it('ONNX Runtime log lines (with colour codes) stay out of the output', () => {
    const script = join(dir, 'ortlog.mts');
    writeFileSync(
      script,
      `import { createModel } from ${JSON.stringify(join(REPO, 'src/model.ts'))};\n` +
        `const m = createModel('resnet18', { inputSize: 32 }).initWeights(1);\n` +
        // Serializing an 'all'-optimized model is one thing ORT warns about.
        `await (await m.createSession({ optimizedModelPath: ${JSON.stringify(join(dir, 'opt.onnx'))} })).release();\n`,
    );
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), script], { cwd: dir, encoding: 'utf8', env });
    const quiet = run({ ...process.env, TSIMM_ORT_LOG: '' });
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.ok(!quiet.stderr.includes(ESC) && !quiet.stderr.includes('onnxruntime'), quiet.stderr);
    const loud = run({ ...process.env, TSIMM_ORT_LOG: 'warning' });
    assert.match(loud.stderr, /W:onnxruntime/, 'the warning exists, so the quiet run proves something');
  });

  it('skipped suites show in the closing "skipped" count', () => {
    const file = join(dir, 'skips.test.ts');
    writeFileSync(file, `import { it } from 'node:test';\nimport { describeOrSkip } from ${JSON.stringify(join(REPO, 'test/helpers/skip.ts'))};\ndescribeOrSkip('needs a thing', 'the thing is absent', () => { it('a', () => {}); it('b', () => {}); });\ndescribeOrSkip('has it', false, () => { it('c', () => {}); });\n`);
    const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--test', file], { cwd: dir, encoding: 'utf8', env: plainEnv() });
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /# skipped 1\b/);
    assert.match(r.stdout, /# pass 1\b/);
    assert.match(r.stdout, /needs a thing.*# SKIP the thing is absent/);
  });

  it('test/hub.test.ts leaves no /tmp/tsimm-hub-* directories', () => {
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--test', join(REPO, 'test/hub.test.ts')], { cwd: REPO, encoding: 'utf8', env: plainEnv({ TMPDIR: tmp }) });
    assert.match(r.stdout, /# pass [1-9]/, 'the hub tests ran');
    assert.equal(r.status, 0, r.stdout.slice(-2000));
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('tsimm-hub-')), []);
  });
});

describe('10. install weight', () => {
  it('onnxruntime-web is an optional peer of tsimm/web, not a dependency Node users install', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    assert.equal(pkg.dependencies['onnxruntime-web'], undefined);
    assert.ok(pkg.peerDependencies['onnxruntime-web']);
    assert.equal(pkg.peerDependenciesMeta['onnxruntime-web'].optional, true);
    assert.equal(pkg.type, 'module');
    assert.match(readFileSync(join(REPO, 'README.md'), 'utf8'), /ESM-only/);
    // No Node module imports the browser runtime (only web/ does).
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    for (const f of walk(join(REPO, 'src'))) assert.doesNotMatch(readFileSync(f, 'utf8'), /from 'onnxruntime-web'/, f);
  });

  it('the preprocessed tensor still comes out of the CLI (sanity for the paths above)', () => {
    const r = tsimm('preprocess', 'ok.jpg', '--model', 'resnet18', '-o', 'pre.npy', '--size', '32');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readNpy(join(dir, 'pre.npy')).shape, [1, 3, 32, 32]);
  });
});

describe('memory: folded weights stream to the session file', () => {
  it('folded conv weights are computed on read, and the streamed .data file equals the in-memory encoding', async () => {
    const { buildOnnx, concatChunks, lowerGraph } = await import('../src/onnx/export.js');
    const { writeOnnx } = await import('../src/node/files.js');
    const m = createModel('resnet18', { inputSize: 32 }).initWeights(4);
    const lazy = lowerGraph(m.graph, m.weights!, true).initializers.filter((i) => i.lazy);
    assert.ok(lazy.length >= 20, 'every folded conv weight and bias');
    assert.notEqual(lazy[0]!.data, lazy[0]!.data, 'a fresh array per read: nothing is kept');
    assert.deepEqual(lazy[0]!.data, lazy[0]!.data);
    const path = join(dir, 'stream.onnx');
    writeOnnx(path, m.graph, m.weights!, { external: true });
    const mem = buildOnnx(m.graph, m.weights!, { externalLocation: 'stream.onnx.data' });
    assert.deepEqual(new Uint8Array(readFileSync(`${path}.data`)), concatChunks(mem.external!.chunks, mem.external!.byteLength));
    assert.deepEqual(new Uint8Array(readFileSync(path)), concatChunks(mem.chunks, mem.byteLength));
  });

  it('createSession({ releaseWeights }) runs the same and leaves the model without weights', async () => {
    const m = createModel('resnet18', { inputSize: 32 }).loadSafetensors(ckpt);
    const x = { shape: [1, 3, 32, 32], data: Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.cos(i)) };
    const { logits } = await m.run(x);
    const s = await m.createSession({ releaseWeights: true });
    assert.equal(m.weights, undefined);
    assert.deepEqual((await m.run(x, s)).logits.data, logits.data);
    await s.release();
    assert.throws(() => m.toOnnx(), /has no weights/);
  });
});
