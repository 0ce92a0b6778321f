/**
 * Issue 21.6, past one machine on timm: `tsimm train` writes its recipe as timm's args.yaml (keys checked against
 * timm 0.9.16 train.py's argument names, read from its source into test/data), deploy/pytorchjob.yaml is a valid
 * Kubeflow PyTorchJob v1 (fields from training-operator's types, in test/data), and a checkpoint as timm's
 * train.py saves it (state_dict beside its argparse args) comes back to tsimm with its class count.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createModel } from '../src/model.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';
import { parseYaml } from './helpers/yaml.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsimm-timm-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const data = (f: string) => readFileSync(join(REPO, 'test/data', f), 'utf8');
const TIMM_ARGS = new Set(data('timm-0.9.16-train-args.txt').split('\n').filter((l) => l && !l.startsWith('#')));
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const hasPyYaml = spawnSync('/usr/bin/python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;

before(async () => {
  // photos/train and photos/val side by side, as timm reads them (data_dir/train_split, data_dir/val_split).
  for (const split of ['train', 'val']) {
    for (const [k, cls] of ['cold', 'warm'].entries()) {
      mkdirSync(join(tmp, 'photos', split, cls), { recursive: true });
      for (let i = 0; i < 4; i++) {
        const px = Buffer.alloc(36 * 36 * 3);
        for (let j = 0; j < px.length; j++) px[j] = (j % 3 === (k ? 0 : 2) ? 150 : 40) + ((j * 7919 + i * 104729) % 90);
        await sharp(px, { raw: { width: 36, height: 36, channels: 3 } }).png().toFile(join(tmp, 'photos', split, cls, `${i}.png`));
      }
    }
  }
});

describe("args.yaml: tsimm train's recipe under timm's train.py names", () => {
  it('the pinned list is timm 0.9.16 train.py (a sanity check of the test data)', () => {
    assert.equal(TIMM_ARGS.size, 141);
    for (const k of ['model', 'smoothing', 'input_size', 'sched', 'warmup_lr', 'min_lr', 'model_ema_decay', 'aa', 'reprob', 'mixup', 'cutmix', 'drop_path', 'resume']) assert.ok(TIMM_ARGS.has(k), k);
    assert.ok(!TIMM_ARGS.has('label_smoothing'));
  });

  it('every key is one of train.py\'s argument names, and the values say what tsimm ran', () => {
    const run = join(tmp, 'run');
    const r = runCli(tmp, ['train', 'resnet18', '--data', 'photos/train', '--val', 'photos/val', '--size', '32', '-b', '4', '--epochs', '1', '--lr', '0.02', '--nesterov', '--smoothing', '0.15', '--warmup-epochs', '1', '--min-lr', '1e-7', '--model-ema', '--workers', '1', '-o', run]);
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(join(run, 'args.yaml'), 'utf8');
    const y = parseYaml(text) as Record<string, unknown>;
    const unknown = Object.keys(y).filter((k) => !TIMM_ARGS.has(k));
    assert.deepEqual(unknown, [], `not timm 0.9.16 train.py arguments: ${unknown.join(', ')}`);
    assert.equal(y['model'], 'resnet18');
    assert.equal(y['num_classes'], 2);
    assert.deepEqual(y['input_size'], [3, 32, 32]);
    assert.deepEqual([y['data_dir'], y['train_split'], y['val_split']], [join(tmp, 'photos'), 'train', 'val']);
    assert.equal(y['opt'], 'sgd', "tsimm's SGD with --nesterov is timm's 'sgd' (plain momentum is 'momentum')");
    assert.deepEqual([y['lr'], y['smoothing'], y['warmup_epochs'], y['min_lr'], y['cooldown_epochs'], y['sched_on_updates']], [0.02, 0.15, 1, 1e-7, 0, true]);
    assert.deepEqual([y['model_ema'], y['model_ema_decay'], y['epochs'], y['batch_size']], [true, 0.9998, 1, 4]);
    assert.match(text, /^# .*python train\.py --config /m);
    assert.match(text, /^min_lr: 1\.0e-7$/m, 'PyYAML reads 1e-7 as a string; the mantissa has a dot');
  });

  it('PyYAML (what timm uses) reads the same values', { skip: hasPyYaml ? false : 'python3-yaml is not installed' }, () => {
    const file = join(tmp, 'run', 'args.yaml');
    const py = spawnSync('/usr/bin/python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    assert.deepEqual(JSON.parse(py.stdout), parseYaml(readFileSync(file, 'utf8')));
  });
});

type Schema = { root: string; types: Record<string, { fields: Record<string, string>; required?: string[] }>; enums: Record<string, string[]> };

/** Problems of `v` as type `t` of the schema (field names, value kinds, enums, required fields), with their paths. */
function check(schema: Schema, t: string, v: unknown, path: string, out: string[]): void {
  const kind = (x: unknown) => (Array.isArray(x) ? 'list' : x === null ? 'null' : typeof x);
  if (t === 'any') return;
  if (t.startsWith('[')) {
    if (!Array.isArray(v)) return void out.push(`${path}: expected a list, got ${kind(v)}`);
    v.forEach((x, i) => check(schema, t.slice(1, -1), x, `${path}[${i}]`, out));
    return;
  }
  if (t.startsWith('<')) {
    if (kind(v) !== 'object') return void out.push(`${path}: expected a map, got ${kind(v)}`);
    for (const [k, x] of Object.entries(v as object)) check(schema, t.slice(1, -1), x, `${path}.${k}`, out);
    return;
  }
  if (t === 'string' || t === 'int' || t === 'bool' || t === 'quantity') {
    const ok = t === 'string' ? typeof v === 'string' : t === 'int' ? Number.isInteger(v) : t === 'bool' ? typeof v === 'boolean' : typeof v === 'string' || typeof v === 'number';
    if (!ok) out.push(`${path}: expected ${t}, got ${JSON.stringify(v)}`);
    return;
  }
  const type = schema.types[t];
  assert.ok(type, `schema type ${t}`);
  if (kind(v) !== 'object') return void out.push(`${path}: expected ${t}, got ${kind(v)}`);
  const obj = v as Record<string, unknown>;
  for (const r of type.required ?? []) if (!(r in obj)) out.push(`${path}: ${t} requires ${r}`);
  for (const [k, x] of Object.entries(obj)) {
    const ft = type.fields[k];
    if (!ft) {
      out.push(`${path}.${k}: not a field of ${t} (${Object.keys(type.fields).join(', ')})`);
      continue;
    }
    const allowed = schema.enums[`${t}.${k}`];
    if (allowed && ft.startsWith('<')) for (const key of Object.keys(x as object)) if (!allowed.includes(key)) out.push(`${path}.${k}.${key}: must be one of ${allowed.join(', ')}`);
    if (allowed && !ft.startsWith('<') && !allowed.includes(x as string)) out.push(`${path}.${k}: ${JSON.stringify(x)} must be one of ${allowed.join(', ')}`);
    check(schema, ft, x, `${path}.${k}`, out);
  }
}

describe('deploy/pytorchjob.yaml: a Kubeflow PyTorchJob v1 running timm on the run', () => {
  const schema = JSON.parse(data('pytorchjob-v1-fields.json')) as Schema;
  const job = parseYaml(readFileSync(join(REPO, 'deploy/pytorchjob.yaml'), 'utf8')) as { apiVersion: string; kind: string; metadata: { name: string }; spec: { pytorchReplicaSpecs: Record<string, { replicas?: number; template: { spec: { containers: { name: string; image: string; command: string[]; args: string[] }[] } } }> } };

  it("every field is the PyTorchJob v1 schema's, with its value kind", () => {
    const problems: string[] = [];
    check(schema, schema.root, job, '', problems);
    assert.deepEqual(problems, []);
    assert.equal(job.apiVersion, 'kubeflow.org/v1');
    assert.equal(job.kind, 'PyTorchJob');
  });

  it('the checker rejects what the operator rejects (so the check above can fail)', () => {
    const bad = structuredClone(job) as unknown as { spec: Record<string, unknown> };
    bad.spec['pytorchReplicas'] = {};
    (bad.spec['pytorchReplicaSpecs'] as Record<string, unknown>)['Chief'] = (bad.spec['pytorchReplicaSpecs'] as Record<string, unknown>)['Worker'];
    const problems: string[] = [];
    check(schema, schema.root, bad, '', problems);
    assert.ok(problems.some((p) => /\.spec\.pytorchReplicas: not a field of PyTorchJobSpec/.test(p)), problems.join('\n'));
    assert.ok(problems.some((p) => /pytorchReplicaSpecs\.Chief: must be one of Master, Worker/.test(p)), problems.join('\n'));
  });

  it("the operator's rules: a pytorch container with an image per replica, one Master, a DNS-1035 name; torchrun on args.yaml", () => {
    assert.match(job.metadata.name, /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
    const specs = job.spec.pytorchReplicaSpecs;
    assert.equal(specs['Master']!.replicas ?? 1, 1);
    for (const [type, s] of Object.entries(specs)) {
      const c = s.template.spec.containers.find((x) => x.name === 'pytorch');
      assert.ok(c && c.image, `${type}: a container named pytorch with an image`);
      assert.deepEqual(c.command, ['torchrun', '/opt/timm/train.py']);
      assert.equal(c.args[c.args.indexOf('--config') + 1], '/data/runs/pets/args.yaml');
      // The flags given beside --config are train.py's too.
      for (const flag of c.args.filter((a) => a.startsWith('--'))) assert.ok(TIMM_ARGS.has(flag.slice(2).replace(/-/g, '_')), flag);
    }
    assert.match(readFileSync(join(REPO, 'deploy/timm-train.Dockerfile'), 'utf8'), /timm==0\.9\.16[\s\S]*\/v0\.9\.16\/train\.py \/opt\/timm\/train\.py/);
  });
});

describe("timm's checkpoint comes back to tsimm", () => {
  it('model_best.pth.tar as timm saves it (state_dict, optimizer, argparse args) loads with its 10 classes', { skip: hasTorch ? false : 'python3-torch is not installed (.ci/run installs it)' }, () => {
    const params = createModel('resnet18', { numClasses: 10, inputSize: 32 }).parameters();
    writeFileSync(join(tmp, 'params.json'), JSON.stringify(params));
    const file = join(tmp, 'model_best.pth.tar');
    const py = spawnSync('/usr/bin/python3', ['-c', `
import argparse, json, sys, torch
from collections import OrderedDict
g = torch.Generator().manual_seed(0)
sd = OrderedDict()
for p in json.load(open(sys.argv[1])):
    t = torch.randn(*p['shape'], generator=g) * 0.05
    sd[p['name']] = t.abs() + 0.5 if p['name'].endswith('running_var') else t
sd['bn1.num_batches_tracked'] = torch.tensor(7)
torch.save({'epoch': 3, 'arch': 'resnet18', 'state_dict': sd, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1}]}, 'version': 2,
            'args': argparse.Namespace(model='resnet18', num_classes=10, input_size=[3, 32, 32], lr=0.1, drop_path=None), 'metric': 91.5}, sys.argv[2])
`, join(tmp, 'params.json'), file], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const m = createModel('resnet18', { inputSize: 32, weights: file });
    assert.equal(m.numClasses, 10);
    const p = runCli(tmp, ['predict', 'resnet18', '--weights', file, '--size', '32', join(tmp, 'photos/val/warm/0.png'), '--topk', '10', '--json']);
    assert.equal(p.code, 0, p.stderr);
    const preds = (JSON.parse(p.stdout) as { predictions: { index: number; prob: number }[] }[])[0]!.predictions;
    assert.equal(preds.length, 10);
    assert.ok(Math.abs(preds.reduce((s, q) => s + q.prob, 0) - 1) < 1e-4, 'ten finite probabilities that sum to 1');
  });
});
