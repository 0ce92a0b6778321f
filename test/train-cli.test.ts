/**
 * `tsimm train` as a user runs it: an ImageFolder of photos-like PNGs with a validation split, the run directory,
 * `predict` with the trained weights printing the user's class names, Ctrl-C then `--resume` giving the losses of
 * an uninterrupted run, Fashion-MNIST from Debian's package (IDX), and bad input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { fashionMnistDir } from '../src/data/idx.js';
import { loadSafetensors } from '../src/node/safetensors.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsimm-traincli-'));
const data = join(tmp, 'photos');
after(() => rmSync(tmp, { recursive: true, force: true }));

before(async () => {
  // Two classes a small net separates in a few steps: warm (red-dominant) and cold (blue-dominant) noise.
  for (const [k, cls] of ['cold', 'warm'].entries()) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 16; i++) {
      const px = Buffer.alloc(40 * 36 * 3);
      for (let j = 0; j < px.length; j++) px[j] = (j % 3 === (k ? 0 : 2) ? 150 : 40) + ((j * 7919 + i * 104729) % 90);
      await sharp(px, { raw: { width: 40, height: 36, channels: 3 } }).png().toFile(join(data, cls, `${i}.png`));
    }
  }
});

const base = ['train', 'resnet18', '--data', data, '--val-split', '0.25', '--size', '32', '--batch-size', '8', '--lr', '0.05', '--seed', '3', '--workers', '1'];

describe('tsimm train', () => {
  it('trains on an ImageFolder, writes the run, and predict prints the class names', () => {
    const run = join(tmp, 'run');
    const r = runCli(tmp, [...base, '--epochs', '3', '--no-aug', '--model-ema', '--model-ema-decay', '0.9', '--log-interval', '2', '-o', run, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^epoch 1\/3 batch 2\/3 loss \d+\.\d+ lr [\d.e+-]+ [\d.]+ img\/s ETA \d+:\d\d$/m, 'plain progress lines off a terminal');
    const s = JSON.parse(r.stdout) as { epochs: { train_loss: number; eval_top1: number }[]; classes: string[]; best: { epoch: number } };
    assert.deepEqual(s.classes, ['cold', 'warm']);
    assert.equal(s.epochs.length, 3);
    for (const f of ['last.safetensors', 'best.safetensors', 'ema.safetensors', 'config.json', 'state.json', 'log.jsonl', 'summary.csv']) assert.ok(existsSync(join(run, f)), f);
    const p = runCli(tmp, ['predict', 'resnet18', '--weights', join(run, 'best.safetensors'), join(data, 'warm', '3.png'), '--topk', '2', '--json']);
    assert.equal(p.code, 0, p.stderr);
    const pred = JSON.parse(p.stdout) as { predictions: { label: string }[] }[];
    assert.deepEqual(pred[0]!.predictions.map((q) => q.label).sort(), ['cold', 'warm']);
    const e = runCli(tmp, ['eval', 'resnet18', data, '--weights', join(run, 'best.safetensors'), '--json']);
    assert.equal(e.code, 0, e.stderr);
    const ev = JSON.parse(e.stdout) as { evaluated: number; top1: number };
    assert.equal(ev.evaluated, 32);
    assert.ok(ev.top1 >= 0 && ev.top1 <= 100);
  });

  it('fine-tuning flows from that checkpoint: head-only at a higher resolution, a new head, distillation', (t) => {
    const run = join(tmp, 'run');
    const best = join(run, 'best.safetensors');
    // PaddleClas "Fix": everything frozen but the classifier, at a higher resolution.
    const fix = join(tmp, 'fix');
    const f = runCli(tmp, ['train', 'resnet18', '--data', data, '--weights', best, '--freeze', 'head', '--size', '48', '--epochs', '1', '--batch-size', '8', '--no-aug', '--workers', '1', '-o', fix]);
    assert.equal(f.code, 0, f.stderr);
    const before = loadSafetensors(best);
    const after = loadSafetensors(join(fix, 'last.safetensors'));
    assert.deepEqual(after.get('layer3.0.conv1.weight')!.data, before.get('layer3.0.conv1.weight')!.data);
    assert.deepEqual(after.get('layer3.0.bn1.running_var')!.data, before.get('layer3.0.bn1.running_var')!.data, 'frozen BatchNorm statistics moved');
    assert.notDeepEqual(after.get('fc.weight')!.data, before.get('fc.weight')!.data);
    assert.deepEqual((JSON.parse(readFileSync(join(fix, 'config.json'), 'utf8')) as { input_size: number[] }).input_size, [3, 48, 48]);
    // A 3-class dataset from the 2-class checkpoint: the classifier is re-initialised (timm's rule), the rest loads.
    const three = join(tmp, 'three');
    for (const c of ['cold', 'warm', 'warm2']) mkdirSync(join(three, c), { recursive: true });
    for (let i = 0; i < 8; i++) for (const [c, src] of [['cold', 'cold'], ['warm', 'warm'], ['warm2', 'warm']]) copyFileSync(join(data, src!, `${i}.png`), join(three, c!, `${i}.png`));
    const ft = join(tmp, 'ft');
    const n = runCli(tmp, ['train', 'resnet18', '--data', three, '--weights', best, '--size', '32', '--epochs', '1', '--batch-size', '8', '--lr', '0.01', '--workers', '1', '-o', ft, '--json']);
    assert.equal(n.code, 0, n.stderr);
    assert.equal(loadSafetensors(join(ft, 'last.safetensors')).get('fc.weight')!.shape[0], 3);
    // Distillation from the trained checkpoint: the KL term is logged and falls.
    const kd = join(tmp, 'kd');
    const k = runCli(tmp, ['train', 'resnet18', '--data', data, '--teacher', 'resnet18', '--teacher-weights', best, '--distill', 'kl', '--temperature', '2', '--distill-alpha', '1', '--size', '32', '--epochs', '4', '--batch-size', '8', '--lr', '0.005', '--opt', 'adamw', '--weight-decay', '0', '--no-aug', '--workers', '1', '-o', kd, '--json']);
    assert.equal(k.code, 0, k.stderr);
    const ep = (JSON.parse(k.stdout) as { epochs: { train_loss_kd: number }[] }).epochs.map((e) => e.train_loss_kd);
    t.diagnostic(`KD term by epoch: ${ep.map((x) => x.toFixed(4)).join(' → ')}`);
    assert.ok(ep.every(Number.isFinite) && ep[3]! < ep[0]!, `KD term ${ep.join(' → ')}`);
    // Resuming a run with another architecture is refused.
    const wrong = runCli(tmp, ['train', 'resnet34', '-o', run, '--resume']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /holds a run of resnet18 with 2 classes, not resnet34/);
  });

  it('Ctrl-C saves a resumable state (exit 130); --resume gives the losses of an uninterrupted run', async () => {
    const full = join(tmp, 'full');
    const args = [...base, '--epochs', '2', '--mixup', '0.4', '--cutmix', '1.0'];
    const u = runCli(tmp, [...args, '-o', full, '--json']);
    assert.equal(u.code, 0, u.stderr);
    const part = join(tmp, 'part');
    const code = await new Promise<number>((res) => {
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO, 'src/cli/main.ts'), ...args, '-o', part], { cwd: tmp });
      let sent = false;
      child.stdout.on('data', (d: Buffer) => {
        // The first epoch line: interrupt during the second epoch.
        if (!sent && d.toString().includes('epoch 0')) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      child.on('exit', (c) => res(c ?? -1));
    });
    assert.equal(code, 130);
    const r = runCli(tmp, ['train', 'resnet18', '-o', part, '--resume', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const a = readFileSync(join(full, 'summary.csv'), 'utf8').trim().split('\n');
    const b = readFileSync(join(part, 'summary.csv'), 'utf8').trim().split('\n');
    assert.equal(b.length, a.length);
    a.slice(1).forEach((row, i) => {
      const [la, lb] = [Number(row.split(',')[1]), Number(b[i + 1]!.split(',')[1])];
      assert.ok(Math.abs(la - lb) < 1e-6, `epoch ${i}: ${la} vs ${lb}`);
    });
  });

  it('Fashion-MNIST (IDX, Debian package): grayscale into a 1-channel model, test split as validation', { skip: fashionMnistDir() ? false : 'dataset-fashion-mnist is not installed (.ci/run installs it)' }, () => {
    const dir = fashionMnistDir()!;
    const run = join(tmp, 'fm');
    const r = runCli(tmp, ['train', 'resnet18', '--data', dir, '--val', dir, '--limit', '128', '--in-chans', '1', '--size', '32', '--epochs', '1', '--batch-size', '32', '--workers', '1', '-o', run, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { class_names: string[]; in_chans: number; data: { val_samples: number } };
    assert.equal(cfg.class_names[9], 'Ankle boot');
    assert.equal(cfg.in_chans, 1);
    assert.equal(cfg.data.val_samples, 128);
  });

  it("the README's first command: the bundled Fashion-MNIST model classifies its test images, offline", () => {
    const dir = join(REPO, 'examples/fashion-mnist');
    const images = readdirSync(join(dir, 'images')).filter((f) => f.endsWith('.png')).map((f) => join(dir, 'images', f));
    assert.equal(images.length, 20);
    const r = runCli(tmp, ['predict', 'regnetx_002', '--weights', join(dir, 'model.safetensors'), ...images, '--topk', '1', '--json'], { ...process.env, TSIMM_OFFLINE: '1' });
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { image: string; predictions: { label: string }[] }[];
    const slug = (l: string) => l.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const right = res.filter((x) => x.image.endsWith(`_${slug(x.predictions[0]!.label)}.png`)).length;
    assert.ok(right >= 18, `${right} of 20 correct`);
  });

  it('tsimm eval on the Fashion-MNIST IDX test split reproduces the example\'s committed accuracy', { skip: fashionMnistDir() ? false : 'dataset-fashion-mnist is not installed (.ci/run installs it)' }, () => {
    const dir = join(REPO, 'examples/fashion-mnist');
    const committed = Number(/top-1 ([\d.]+) %, top-5/.exec(readFileSync(join(dir, 'README.md'), 'utf8'))![1]);
    const r = runCli(tmp, ['eval', 'regnetx_002', fashionMnistDir()!, '--weights', join(dir, 'model.safetensors'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout) as { evaluated: number; top1: number };
    assert.equal(e.evaluated, 10000);
    assert.equal(e.top1.toFixed(2), committed.toFixed(2));
  });

  it("issue 20.8-11: timm's flag names, an existing run refused, a finished run said complete, extending it printed", () => {
    const run = join(tmp, 'timm');
    // timm's spellings: --img-size, --smoothing, --sched, --warmup-lr, --min-lr, --model-ema-decay, --aa, --reprob, --mixup, --cutmix.
    const timmArgs = ['train', 'resnet18', '--data', data, '--val-split', '0.25', '--img-size', '32', '-b', '8', '--lr', '0.05', '--seed', '3', '--workers', '1', '--epochs', '1', '--smoothing', '0.2', '--sched', 'cosine', '--warmup-lr', '1e-4', '--min-lr', '1e-7', '--model-ema', '--model-ema-decay', '0.9', '--aa', 'rand-m9-mstd0.5', '--reprob', '0.25', '--mixup', '0.2', '--cutmix', '1.0'];
    const r = runCli(tmp, [...timmArgs, '-o', run, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { input_size: number[]; recipe: { trainer: { labelSmoothing: number }; schedule: { warmupLr: number; minLr: number }; ema: number; mixup: { mixupAlpha: number; cutmixAlpha: number } } };
    assert.deepEqual(cfg.input_size, [3, 32, 32]);
    assert.equal(cfg.recipe.trainer.labelSmoothing, 0.2);
    assert.deepEqual([cfg.recipe.schedule.warmupLr, cfg.recipe.schedule.minLr, cfg.recipe.ema], [1e-4, 1e-7, 0.9]);
    assert.deepEqual([cfg.recipe.mixup.mixupAlpha, cfg.recipe.mixup.cutmixAlpha], [0.2, 1]);
    // 8: the same -o again is refused, naming both ways on; nothing in the run changes.
    const before = readFileSync(join(run, 'last.safetensors'));
    const again = runCli(tmp, [...timmArgs, '-o', run]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^tsimm train: error: \S+ already holds a run \(config\.json\): continue it with --resume, replace it with --overwrite, or give another --output\n$/);
    assert.deepEqual(readFileSync(join(run, 'last.safetensors')), before);
    // 10: resuming a finished run says it is complete (timm's --resume PATH form, a file of the run).
    const done = runCli(tmp, ['train', 'resnet18', '--resume', join(run, 'last.safetensors')]);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /is complete: 1 of 1 epochs trained .*resume with --epochs N \(N > 1\)/);
    // Extending is explicit (--epochs) and printed with the schedule's consequence.
    const ext = runCli(tmp, ['train', 'resnet18', '-o', run, '--resume', '--epochs', '2', '--json']);
    assert.equal(ext.code, 0, ext.stderr);
    assert.match(ext.stderr, /^tsimm train: note: extending \S+ from 1 to 2 epochs \(1 done\): the cosine schedule is re-planned over 2 epochs, so the LR goes on at [\d.]+e[-+]\d+ where the 1-epoch plan had [\d.]+e[-+]\d+$/m);
    assert.equal((JSON.parse(ext.stdout) as { epochs: unknown[] }).epochs.length, 2);
    // --overwrite replaces the run: one epoch again.
    const over = runCli(tmp, [...timmArgs, '-o', run, '--overwrite', '--json']);
    assert.equal(over.code, 0, over.stderr);
    assert.equal(readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').length, 1);
    // 11: timm's --input-size C H W, --drop-path and --drop (recorded under timm's names); a rate >= 1 is refused in one line.
    const drop = runCli(tmp, ['train', 'resnet18', '--data', data, '--input-size', '3', '32', '32', '--drop-path', '0.1', '--drop', '0.2', '--epochs', '1', '-b', '4', '-o', join(tmp, 'drop')]);
    assert.equal(drop.code, 0, drop.stderr);
    assert.match(readFileSync(join(tmp, 'drop', 'args.yaml'), 'utf8'), /^drop: 0\.2\ndrop_path: 0\.1$/m);
    const bad = runCli(tmp, ['train', 'resnet18', '--data', data, '--size', '32', '--drop-path', '1', '-o', join(tmp, 'drop-bad')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^tsimm train: error: --drop-path .*\n$/);
    const help = runCli(tmp, ['train', '--help']).stdout;
    assert.match(help, /--label-smoothing, --smoothing E/);
    assert.match(help, /--size, --img-size N/);
    assert.match(help, /--resume \[PATH\]/);
    assert.match(help, /not timm's --val-split, which names a split folder/);
  });

  it('issue 20.9: fewer than 2 classes is refused in one line', () => {
    const one = join(tmp, 'one');
    mkdirSync(join(one, 'only'), { recursive: true });
    for (let i = 0; i < 4; i++) copyFileSync(join(data, 'warm', `${i}.png`), join(one, 'only', `${i}.png`));
    const r = runCli(tmp, ['train', 'resnet18', '--data', one, '--size', '32', '-b', '2', '-o', join(tmp, 'one-run')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tsimm train: error: \S+ has 1 class \(only\): a classifier needs at least 2 .*\n$/);
    assert.equal(existsSync(join(tmp, 'one-run')), false, 'nothing written');
  });

  it('bad input: a missing data path, nothing to resume, a batch larger than the data', () => {
    const miss = runCli(tmp, ['train', 'resnet18', '--data', join(tmp, 'nope'), '-o', join(tmp, 'x')]);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /nope/);
    assert.equal(miss.stderr.trim().split('\n').length, 1, miss.stderr);
    const res = runCli(tmp, ['train', 'resnet18', '-o', join(tmp, 'empty'), '--resume']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /nothing to resume/);
    const big = runCli(tmp, ['train', 'resnet18', '--data', data, '--size', '32', '--batch-size', '64', '-o', join(tmp, 'big')]);
    assert.equal(big.code, 1);
    assert.match(big.stderr, /--batch-size 64 is larger than the 32 training samples/);
  });
});
