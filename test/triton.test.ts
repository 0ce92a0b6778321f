/**
 * Scaling out: `export --triton` (a Triton model repository, its config.pbtxt checked against the fields of
 * Triton's model_config.proto and its model.onnx run by ONNX Runtime at two batch sizes), the deploy/ manifests,
 * and `eval --shard K/N` + `eval --merge` adding up to the unsharded run.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { serve } from '../src/cli/serve.js';
import { fashionMnistDir } from '../src/data/idx.js';
import { createModel } from '../src/model.js';
import { preferredBatchSizes, tritonConfig, tritonLabels } from '../src/tasks/triton.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-triton-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tsimm = (...args: string[]) => runCli(dir, args);

// ---- protobuf text format: a small parser (messages, lists, strings, enums, numbers, # comments) ----

type PbScalar = { s: string } | { n: number } | { e: string };
type PbValue = PbScalar | PbMessage;
type PbMessage = Map<string, PbValue[]>;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const re = /\s+|#[^\n]*|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([{}[\]:,;])|(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|([A-Za-z_][\w.]*)|(.)/gy;
  for (let m = re.exec(text); m && m[0]; m = re.exec(text)) {
    if (m[6] !== undefined) throw new SyntaxError(`unexpected character ${JSON.stringify(m[6])} at ${m.index}`);
    const t = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (t !== undefined) tokens.push(t);
  }
  return tokens;
}

function parsePbtxt(text: string): PbMessage {
  const t = tokenize(text);
  let i = 0;
  const scalar = (tok: string): PbScalar => {
    if (tok[0] === '"' || tok[0] === "'") return { s: JSON.parse(`"${tok.slice(1, -1).replace(/\\'/g, "'").replace(/(?<!\\)"/g, '\\"')}"`) as string };
    if (/^[-\d.]/.test(tok)) return { n: Number(tok) };
    if (/^[A-Za-z_]/.test(tok)) return { e: tok };
    throw new SyntaxError(`expected a value, got ${tok}`);
  };
  const value = (): PbValue => {
    const tok = t[i++];
    if (tok === undefined) throw new SyntaxError('unexpected end of input');
    return tok === '{' ? message('}') : scalar(tok);
  };
  const message = (end?: string): PbMessage => {
    const m: PbMessage = new Map();
    for (;;) {
      const field = t[i];
      if (field === end || field === undefined) {
        if (field !== end) throw new SyntaxError(`missing ${end}`);
        i++;
        return m;
      }
      if (!/^[A-Za-z_]\w*$/.test(field)) throw new SyntaxError(`expected a field name, got ${field}`);
      i++;
      if (t[i] === ':') i++;
      const values = m.get(field) ?? [];
      if (t[i] === '[') {
        i++;
        while (t[i] !== ']') {
          values.push(value());
          if (t[i] === ',') i++;
          else if (t[i] !== ']') throw new SyntaxError(`expected , or ] in the list ${field}, got ${t[i]}`);
        }
        i++;
      } else values.push(value());
      m.set(field, values);
      if (t[i] === ',' || t[i] === ';') i++;
    }
  };
  return message(undefined);
}

// ---- Triton's ModelConfig (model_config.proto, triton-inference-server/common): field names and types ----

type FieldType = 'string' | 'int' | 'bool' | readonly string[] | Schema | 'message';
interface Field {
  type: FieldType;
  repeated?: boolean;
}
type Schema = { [field: string]: Field };

const DATA_TYPES = ['TYPE_INVALID', 'TYPE_BOOL', 'TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP16', 'TYPE_FP32', 'TYPE_FP64', 'TYPE_STRING', 'TYPE_BF16'] as const;
const RESHAPE: Schema = { shape: { type: 'int', repeated: true } };
const MODEL_INPUT: Schema = {
  name: { type: 'string' },
  data_type: { type: DATA_TYPES },
  format: { type: ['FORMAT_NONE', 'FORMAT_NHWC', 'FORMAT_NCHW'] },
  dims: { type: 'int', repeated: true },
  reshape: { type: RESHAPE },
  is_shape_tensor: { type: 'bool' },
  allow_ragged_batch: { type: 'bool' },
  optional: { type: 'bool' },
  is_non_linear_format_io: { type: 'bool' },
};
const MODEL_OUTPUT: Schema = {
  name: { type: 'string' },
  data_type: { type: DATA_TYPES },
  dims: { type: 'int', repeated: true },
  reshape: { type: RESHAPE },
  label_filename: { type: 'string' },
  is_shape_tensor: { type: 'bool' },
  is_non_linear_format_io: { type: 'bool' },
};
const DYNAMIC_BATCHING: Schema = {
  preferred_batch_size: { type: 'int', repeated: true },
  max_queue_delay_microseconds: { type: 'int' },
  preserve_ordering: { type: 'bool' },
  priority_levels: { type: 'int' },
  default_priority_level: { type: 'int' },
  default_queue_policy: { type: 'message' },
  priority_queue_policy: { type: 'message', repeated: true },
};
const INSTANCE_GROUP: Schema = {
  name: { type: 'string' },
  kind: { type: ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL'] },
  count: { type: 'int' },
  rate_limiter: { type: 'message' },
  gpus: { type: 'int', repeated: true },
  secondary_devices: { type: 'message', repeated: true },
  profile: { type: 'string', repeated: true },
  passive: { type: 'bool' },
  host_policy: { type: 'string' },
};
const MODEL_CONFIG: Schema = {
  name: { type: 'string' },
  platform: { type: 'string' },
  backend: { type: 'string' },
  runtime: { type: 'string' },
  version_policy: { type: { latest: { type: { num_versions: { type: 'int' } } }, all: { type: {} }, specific: { type: { versions: { type: 'int', repeated: true } } } } },
  max_batch_size: { type: 'int' },
  input: { type: MODEL_INPUT, repeated: true },
  output: { type: MODEL_OUTPUT, repeated: true },
  batch_input: { type: 'message', repeated: true },
  batch_output: { type: 'message', repeated: true },
  optimization: { type: 'message' },
  dynamic_batching: { type: DYNAMIC_BATCHING },
  sequence_batching: { type: 'message' },
  ensemble_scheduling: { type: 'message' },
  instance_group: { type: INSTANCE_GROUP, repeated: true },
  default_model_filename: { type: 'string' },
  cc_model_filenames: { type: 'message', repeated: true },
  metric_tags: { type: 'message', repeated: true },
  // map<string, ModelParameter>: entries { key, value { string_value } }.
  parameters: { type: { key: { type: 'string' }, value: { type: { string_value: { type: 'string' } } } }, repeated: true },
  model_warmup: { type: 'message', repeated: true },
  model_operations: { type: 'message' },
  model_transaction_policy: { type: 'message' },
  model_repository_agents: { type: 'message' },
  response_cache: { type: 'message' },
  model_metrics: { type: 'message' },
};

/** Every problem with `m` against `schema`: unknown fields, wrong kinds, enum values outside the enum, repeats of singular fields. */
function validate(m: PbMessage, schema: Schema, path = ''): string[] {
  const errors: string[] = [];
  for (const [name, values] of m) {
    const f = schema[name];
    const at = `${path}${name}`;
    if (!f) {
      errors.push(`${at}: not a field of Triton's model configuration`);
      continue;
    }
    if (!f.repeated && values.length > 1) errors.push(`${at}: given ${values.length} times but not repeated`);
    for (const x of values) {
      const isMsg = x instanceof Map;
      if (f.type === 'message') {
        if (!isMsg) errors.push(`${at}: expected a message`);
      } else if (typeof f.type === 'object' && !Array.isArray(f.type)) {
        if (isMsg) errors.push(...validate(x, f.type as Schema, `${at}.`));
        else errors.push(`${at}: expected a message`);
      } else if (Array.isArray(f.type)) {
        if (isMsg || !('e' in x) || !f.type.includes(x.e)) errors.push(`${at}: expected one of ${f.type.join(', ')}, got ${JSON.stringify(isMsg ? '{...}' : x)}`);
      } else if (f.type === 'string') {
        if (isMsg || !('s' in x)) errors.push(`${at}: expected a string`);
      } else if (f.type === 'int') {
        if (isMsg || !('n' in x) || !Number.isInteger(x.n)) errors.push(`${at}: expected an integer`);
      } else if (f.type === 'bool') {
        if (isMsg || !('e' in x) || !['true', 'false'].includes(x.e)) errors.push(`${at}: expected true or false`);
      }
    }
  }
  return errors;
}

const msgs = (m: PbMessage, k: string) => (m.get(k) ?? []) as PbMessage[];
const one = (m: PbMessage, k: string) => {
  const v = m.get(k);
  assert.equal(v?.length, 1, `${k} once`);
  return v[0]!;
};
const s = (m: PbMessage, k: string) => (one(m, k) as { s: string }).s;
const n = (m: PbMessage, k: string) => (one(m, k) as { n: number }).n;
const e = (m: PbMessage, k: string) => (one(m, k) as { e: string }).e;
const ints = (m: PbMessage, k: string) => (m.get(k) ?? []).map((x) => (x as { n: number }).n);

describe('protobuf text format parser and ModelConfig schema', () => {
  it('parses nested messages, lists of messages, strings with escapes, enums and numbers', () => {
    const m = parsePbtxt('# c\nname: "a\\"b" max_batch_size: 4\ninput [ { name: "x", dims: [ 3, -1 ] }, { name: \'y\' } ]\ndynamic_batching { }\n');
    assert.equal(s(m, 'name'), 'a"b');
    assert.equal(n(m, 'max_batch_size'), 4);
    assert.deepEqual(msgs(m, 'input').map((x) => s(x, 'name')), ['x', 'y']);
    assert.deepEqual(ints(msgs(m, 'input')[0]!, 'dims'), [3, -1]);
    assert.deepEqual(validate(m, MODEL_CONFIG), []);
  });

  it('catches unknown fields, bad enum values and repeated singular fields', () => {
    const m = parsePbtxt('name: "x"\nmax_batch: 3\ninput { name: "i" data_type: FP32 dims: [ 1 ] }\nplatform: "a"\nplatform: "b"\n');
    const errors = validate(m, MODEL_CONFIG);
    assert.ok(errors.some((x) => /^max_batch: not a field/.test(x)), errors.join('\n'));
    assert.ok(errors.some((x) => /^input\.data_type: expected one of TYPE_/.test(x)), errors.join('\n'));
    assert.ok(errors.some((x) => /^platform: given 2 times/.test(x)), errors.join('\n'));
    assert.throws(() => parsePbtxt('input [ { name: "x" } '), SyntaxError);
  });
});

describe('tritonConfig and labels (pure)', () => {
  it('prefers powers of two up to the maximum batch, and the maximum itself', () => {
    assert.deepEqual(preferredBatchSizes(8), [2, 4, 8]);
    assert.deepEqual(preferredBatchSizes(6), [2, 4, 6]);
    assert.deepEqual(preferredBatchSizes(1), [1]);
  });

  it('labels ImageNet short names, a run\'s class names, else "class i"', () => {
    const imagenet = tritonLabels(1000).split('\n');
    assert.equal(imagenet.length, 1001, '1000 lines and the final newline');
    assert.deepEqual(imagenet.slice(0, 2), ['tench', 'goldfish']);
    assert.equal(tritonLabels(2, ['ant bear', 'cat']), 'ant bear\ncat\n');
    assert.equal(tritonLabels(3), 'class 0\nclass 1\nclass 2\n');
  });

  it('writes a GPU instance group and escapes names', () => {
    const pre = { size: [32, 32] as [number, number], cropPct: 1, cropMode: 'center' as const, interpolation: 'bilinear' as const, backend: 'pil' as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number], exifRotate: false, maxPixels: 1 };
    const text = tritonConfig({ name: 'm"1', maxBatchSize: 2, input: { name: 'input', dims: [3, 32, 32] }, outputs: [{ name: 'logits', dims: [10] }], kind: 'KIND_GPU', preprocess: pre });
    const m = parsePbtxt(text);
    assert.deepEqual(validate(m, MODEL_CONFIG), []);
    assert.equal(s(m, 'name'), 'm"1');
    assert.equal(e(msgs(m, 'instance_group')[0]!, 'kind'), 'KIND_GPU');
    assert.equal(msgs(m, 'output')[0]!.has('label_filename'), false);
  });
});

describe('export --triton', () => {
  const repo = join(dir, 'repo');
  const modelDir = join(repo, 'tiny');

  it('writes DIR/NAME/{config.pbtxt, labels.txt, preprocess.json, VERSION/model.onnx}', () => {
    const r = tsimm('export', 'regnetx_002', '--triton', repo, '--name', 'tiny', '--version', '2', '--max-batch', '4', '--size', '64');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Triton model "tiny" version 2/);
    for (const f of ['config.pbtxt', 'labels.txt', 'preprocess.json', '2/model.onnx']) assert.ok(existsSync(join(modelDir, f)), f);
  });

  it("config.pbtxt uses only Triton's fields, and the model's own names and shapes", async () => {
    const m = parsePbtxt(readFileSync(join(modelDir, 'config.pbtxt'), 'utf8'));
    assert.deepEqual(validate(m, MODEL_CONFIG), []);
    assert.equal(s(m, 'name'), 'tiny', 'name is the directory name');
    assert.equal(s(m, 'platform'), 'onnxruntime_onnx');
    assert.equal(n(m, 'max_batch_size'), 4);
    const [input] = msgs(m, 'input');
    const outputs = msgs(m, 'output');
    assert.equal(msgs(m, 'input').length, 1);
    assert.equal(e(input!, 'data_type'), 'TYPE_FP32');
    assert.equal(e(input!, 'format'), 'FORMAT_NCHW');
    const batching = one(m, 'dynamic_batching') as PbMessage;
    assert.deepEqual(ints(batching, 'preferred_batch_size'), [2, 4]);
    assert.equal(n(batching, 'max_queue_delay_microseconds'), 2000);
    assert.equal(e(msgs(m, 'instance_group')[0]!, 'kind'), 'KIND_CPU');
    const params = new Map(msgs(m, 'parameters').map((p) => [s(p, 'key'), s(one(p, 'value') as PbMessage, 'string_value')]));
    const sidecar = JSON.parse(readFileSync(join(modelDir, 'preprocess.json'), 'utf8'));
    assert.equal(params.get('tsimm_mean'), sidecar.preprocess.mean.join(','));
    assert.equal(params.get('tsimm_input_size'), '64x64');
    assert.equal(params.get('tsimm_model'), 'regnetx_002');

    // The ONNX graph agrees: names, and dims = its shapes without the (symbolic) batch dimension.
    const session = await ort.InferenceSession.create(join(modelDir, '2/model.onnx'));
    try {
      assert.deepEqual(session.inputNames, [s(input!, 'name')]);
      assert.deepEqual(outputs.map((o) => s(o, 'name')), ['logits']);
      assert.ok(session.outputNames.includes('logits'));
      const meta = session.inputMetadata[0]!;
      assert.ok(meta.isTensor);
      const shape = (meta as { shape: readonly (number | string)[] }).shape;
      assert.equal(typeof shape[0], 'string', `batch dimension is symbolic: ${JSON.stringify(shape)}`);
      assert.deepEqual(shape.slice(1), ints(input!, 'dims'));
      assert.deepEqual(ints(input!, 'dims'), [3, 64, 64]);
      const classes = ints(outputs[0]!, 'dims');
      assert.deepEqual(classes, [1000]);

      // Dynamic batch: batch 1 and batch 3 run, and an image's logits do not depend on its batch.
      const per = 3 * 64 * 64;
      const x = new Float32Array(3 * per).map((_, i) => Math.sin(i * 0.37));
      const one1 = await session.run({ input: new ort.Tensor('float32', x.slice(0, per), [1, 3, 64, 64]) });
      const three = await session.run({ input: new ort.Tensor('float32', x, [3, 3, 64, 64]) });
      assert.deepEqual(one1['logits']!.dims, [1, 1000]);
      assert.deepEqual(three['logits']!.dims, [3, 1000]);
      const a = one1['logits']!.data as Float32Array;
      const b = three['logits']!.data as Float32Array;
      for (let i = 0; i < 1000; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4 * Math.max(1, Math.abs(a[i]!)), `logit ${i}: ${a[i]} vs ${b[i]}`);

      const label = s(outputs[0]!, 'label_filename');
      const lines = readFileSync(join(modelDir, label), 'utf8').split('\n');
      assert.equal(lines.pop(), '', 'ends with a newline');
      assert.equal(lines.length, classes[0]);
      assert.equal(lines[0], 'tench');
    } finally {
      await session.release();
    }
  });

  it("labels a fine-tuned run's classes and takes its size from its config.json", () => {
    const run = join(dir, 'run');
    mkdirSync(run);
    const m = createModel('regnetx_002', { numClasses: 3, inputSize: 32 }).initWeights(4);
    saveSafetensors(join(run, 'best.safetensors'), m.stateDict());
    writeFileSync(join(run, 'config.json'), JSON.stringify({ model: 'regnetx_002', num_classes: 3, in_chans: 3, input_size: [3, 32, 32], class_names: ['cat', 'dog', 'ant bear'] }));
    const r = tsimm('export', 'regnetx_002', '--weights', join(run, 'best.safetensors'), '--triton', join(dir, 'runrepo'));
    assert.equal(r.code, 0, r.stderr);
    const md = join(dir, 'runrepo', 'regnetx_002');
    assert.equal(readFileSync(join(md, 'labels.txt'), 'utf8'), 'cat\ndog\nant bear\n');
    const c = parsePbtxt(readFileSync(join(md, 'config.pbtxt'), 'utf8'));
    assert.deepEqual(validate(c, MODEL_CONFIG), []);
    assert.deepEqual(ints(msgs(c, 'input')[0]!, 'dims'), [3, 32, 32]);
    assert.deepEqual(ints(msgs(c, 'output')[0]!, 'dims'), [3]);
    assert.equal(n(c, 'max_batch_size'), 8, 'default --max-batch');
  });

  it('refuses -o with --triton, Triton flags without it, and a name that is not a directory name', () => {
    const both = tsimm('export', 'regnetx_002', '--triton', 'r', '-o', 'm.onnx');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /-o FILE\.onnx or --triton DIR, not both/);
    const stray = tsimm('export', 'regnetx_002', '-o', 'm.onnx', '--max-batch', '4');
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /--max-batch is for --triton DIR/);
    const bad = tsimm('export', 'regnetx_002', '--triton', 'r', '--name', '../up');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--name "\.\.\/up" is not a Triton model name/);
    assert.equal(existsSync(join(dir, 'r')), false, 'nothing written');
  });
});

describe('deploy/ manifests', () => {
  const read = (f: string) => readFileSync(join(REPO, 'deploy', f), 'utf8');
  /** The lines indented under the first `key:` line (after `from`): a YAML block, enough to scope the checks. */
  const block = (text: string, key: string): string => {
    const lines = text.split('\n');
    const i = lines.findIndex((l) => new RegExp(`^\\s*(- )?${key}:`).test(l));
    assert.ok(i >= 0, `${key}: present`);
    const indent = lines[i]!.search(/\S/) + (lines[i]!.trimStart().startsWith('- ') ? 2 : 0);
    const body: string[] = [];
    for (const l of lines.slice(i + 1)) {
      if (l.trim() && l.search(/\S/) <= indent) break;
      body.push(l);
    }
    return body.join('\n');
  };
  const runtime = read('kserve/servingruntime.yaml');

  it('the ServingRuntime speaks v2, for the tsimm model format, with the v2 health probes on 8080', () => {
    assert.match(runtime, /^apiVersion: serving\.kserve\.io\/v1alpha1$/m);
    assert.match(runtime, /^kind: ServingRuntime$/m);
    assert.match(block(runtime, 'protocolVersions'), /^\s+- v2$/m);
    assert.match(block(runtime, 'supportedModelFormats'), /^\s+- name: tsimm$/m);
    for (const [probe, path] of [['readinessProbe', '/v2/health/ready'], ['livenessProbe', '/v2/health/live']] as const) {
      const http = block(block(runtime, probe), 'httpGet');
      assert.match(http, new RegExp(`^\\s+path: ${path}$`, 'm'), probe);
      assert.match(http, /^\s+port: 8080$/m, probe);
    }
    assert.match(runtime, /^\s+command: \["node", "dist\/cli\/main\.js", "serve"\]$/m);
  });

  it('the InferenceService uses that runtime and format over protocol v2', () => {
    const isvc = read('kserve/inferenceservice.yaml');
    assert.match(isvc, /^apiVersion: serving\.kserve\.io\/v1beta1$/m);
    assert.match(isvc, /^kind: InferenceService$/m);
    const model = block(block(isvc, 'predictor'), 'model');
    assert.match(block(model, 'modelFormat'), /^\s+name: tsimm$/m);
    const runtimeName = /^metadata:\n\s+name: (\S+)$/m.exec(runtime)![1];
    assert.match(model, new RegExp(`^\\s+runtime: ${runtimeName}$`, 'm'));
    assert.match(model, /^\s+protocolVersion: v2$/m);
    assert.match(model, /^\s+storageUri: \S+$/m);
  });

  it('the Indexed Job runs one eval shard per completion index, as many shards as completions', () => {
    const job = read('kserve/indexed-job.yaml');
    assert.match(job, /^kind: Job$/m);
    assert.match(job, /^\s+completionMode: Indexed$/m);
    const completions = /^\s+completions: (\d+)$/m.exec(job)![1];
    assert.match(block(job, 'env'), new RegExp(`- name: SHARDS\\n\\s+value: "${completions}"`));
    assert.match(job, /eval \S+ \S+\s+--shard "\$\{JOB_COMPLETION_INDEX\}\/\$\{SHARDS\}" --json/);
  });

  it('the Dockerfile builds tsimm serve on node:20-slim, skipping the onnxruntime CUDA download, on port 8080', () => {
    const docker = read('Dockerfile');
    assert.match(docker, /^FROM node:20-slim/m);
    assert.match(docker, /ONNXRUNTIME_NODE_INSTALL=skip/);
    assert.match(docker, /npm ci/);
    assert.match(docker, /^EXPOSE 8080$/m);
    assert.match(docker, /^CMD \["serve", "\S+", "--host", "0\.0\.0\.0", "--port", "8080"\]$/m);
  });

  it('every serve flag the manifests pass is one tsimm serve takes (once serve declares its options)', (t) => {
    const declared = Object.keys(serve.options);
    if (!declared.length) return t.skip('tsimm serve declares no options yet');
    const cmd = read('Dockerfile').split('\n').filter((l) => l.startsWith('CMD '));
    const used = new Set([...`${runtime}\n${cmd.join('\n')}\n${read('kserve/inferenceservice.yaml')}`.matchAll(/(?:^|[\s"[])--([a-z][\w-]*)/gm)].map((m) => m[1]!));
    for (const flag of used) assert.ok(declared.includes(flag), `--${flag} is not an option of tsimm serve (${declared.join(', ')})`);
  });
});

describe('eval --shard and --merge', () => {
  const data = join(dir, 'val');
  let ckpt: string;

  before(async () => {
    // A 5-class head with random weights: predictions vary by image, so hits are neither 0 nor all.
    const m = createModel('resnet18', { numClasses: 5, inputSize: 32 }).initWeights(7);
    ckpt = join(dir, 'r18-5.safetensors');
    saveSafetensors(ckpt, m.stateDict());
    const colours = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40], [40, 220, 220], [120, 60, 200], [250, 250, 250]];
    for (const [i, [r, g, b]] of colours.entries()) {
      const cls = String(i % 3);
      mkdirSync(join(data, cls), { recursive: true });
      await sharp({ create: { width: 40 + i * 7, height: 36, channels: 3, background: { r: r!, g: g!, b: b! } } }).png().toFile(join(data, cls, `img${i}.png`));
    }
    writeFileSync(join(data, '1', 'broken.png'), 'not a png');
  });

  it('two shards partition the listing and merge to the unsharded Acc@1/Acc@5', () => {
    const evalJson = (...extra: string[]) => {
      const r = tsimm('eval', 'resnet18', data, '--weights', ckpt, '--size', '32', '--json', '--workers', '1', ...extra);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const whole = JSON.parse(evalJson());
    const shards = [0, 1].map((k) => evalJson('--shard', `${k}/2`));
    const parsed = shards.map((x) => JSON.parse(x));
    assert.deepEqual(parsed.map((p) => p.shard), ['0/2', '1/2']);
    // 8 listed files (7 images + 1 broken) at sorted positions: 0/2 takes 4, 1/2 takes 4.
    assert.deepEqual(parsed.map((p) => p.listed), [4, 4]);
    assert.equal(parsed[0].evaluated + parsed[1].evaluated, whole.evaluated);
    assert.equal(whole.evaluated, 7);
    assert.equal(parsed[0].top1Hits + parsed[1].top1Hits, whole.top1Hits);
    assert.equal(whole.top1Hits, Math.round((whole.top1 * whole.evaluated) / 100));
    shards.forEach((x, k) => writeFileSync(join(dir, `shard-${k}.json`), x));
    const merged = tsimm('eval', '--merge', join(dir, 'shard-0.json'), join(dir, 'shard-1.json'), '--json');
    assert.equal(merged.code, 0, merged.stderr);
    const m = JSON.parse(merged.stdout);
    assert.deepEqual([m.evaluated, m.listed, m.top1Hits, m.top5Hits, m.failed.length], [whole.evaluated, whole.listed, whole.top1Hits, whole.top5Hits, whole.failed.length]);
    assert.ok(Math.abs(m.top1 - whole.top1) < 1e-9 && Math.abs(m.top5 - whole.top5) < 1e-9);
    const text = tsimm('eval', '--merge', join(dir, 'shard-0.json'), join(dir, 'shard-1.json'));
    assert.ok(text.stdout.includes(` * Acc@1 ${whole.top1.toFixed(3)} (${(100 - whole.top1).toFixed(3)})  Acc@5 ${whole.top5.toFixed(3)}`), text.stdout);
    const dup = tsimm('eval', '--merge', join(dir, 'shard-0.json'), join(dir, 'shard-0.json'));
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /shard 0\/2 is given twice/);
    const partial = tsimm('eval', '--merge', join(dir, 'shard-1.json'));
    assert.equal(partial.code, 0);
    assert.match(partial.stderr, /merging 1 of 2 shards/);
  });

  it('IDX folders shard and merge too (loss weighted by count)', { skip: fashionMnistDir() ? false : 'dataset-fashion-mnist is not installed (.ci/run installs it)' }, () => {
    const weights = join(REPO, 'examples/fashion-mnist/model.safetensors');
    const run = (...extra: string[]) => {
      const r = tsimm('eval', 'regnetx_002', fashionMnistDir()!, '--weights', weights, '--limit', '40', '--json', '--workers', '1', ...extra);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const whole = JSON.parse(run());
    [0, 1].forEach((k) => writeFileSync(join(dir, `idx-${k}.json`), run('--shard', `${k}/2`)));
    const m = tsimm('eval', '--merge', join(dir, 'idx-0.json'), join(dir, 'idx-1.json'), '--json');
    assert.equal(m.code, 0, m.stderr);
    const j = JSON.parse(m.stdout);
    assert.deepEqual([j.evaluated, j.top1Hits, j.top5Hits], [40, whole.top1Hits, whole.top5Hits]);
    assert.ok(Math.abs(j.loss - whole.loss) < 1e-6, `${j.loss} vs ${whole.loss}`);
  });

  it('a shard with no images reports zero counts that merge', () => {
    const r = tsimm('eval', 'resnet18', data, '--weights', ckpt, '--size', '32', '--json', '--shard', '9/10');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual([j.shard, j.evaluated, j.top1Hits, j.top5Hits], ['9/10', 0, 0, 0]);
  });

  it('refuses a malformed --shard, naming the form K/N', () => {
    for (const bad of ['2/2', '1', 'a/b', '-1/2', '0/0']) {
      const r = tsimm('eval', 'resnet18', data, '--weights', ckpt, `--shard=${bad}`);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--shard takes K\/N with 0 ≤ K < N/, bad);
    }
  });

  it('predict --shard splits the sorted images between processes', () => {
    const images = ['2/img2.png', '0/img0.png', '1/img1.png'].map((f) => join(data, f));
    const shard = (k: number) => {
      const r = tsimm('predict', 'resnet18', ...images, '--weights', ckpt, '--size', '32', '--json', '--topk', '1', '--shard', `${k}/2`);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { image: string }[]).map((x) => x.image);
    };
    // Sorted: 0/img0, 1/img1, 2/img2 → shard 0 takes positions 0 and 2 (kept in the order given), shard 1 position 1.
    assert.deepEqual(shard(0), [images[0], images[1]]);
    assert.deepEqual(shard(1), [images[2]]);
  });
});
