/** The tsimm commands. Each parses its own options, prints results on stdout and returns an exit code. */
import { DEFAULT_MAX_PIXELS, preprocessImage, resolvePreprocess, type PreprocessConfig, type PreprocessOverrides } from '../data/preprocess.js';
import { createModel, type Model } from '../model.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { allEntries } from '../models/index.js';
import { benchModel, formatBench, machineInfo, markdownBench, PROTOCOL, type BenchRow, type MachineInfo, type Precision } from '../tasks/bench.js';
import { calibrate, checkInt8, imageBatches, int8Onnx } from '../tasks/quantize.js';
import { buildReport, readBenchResults } from '../tasks/report.js';
import { createSession } from '../runtime/session.js';
import { writeChunksAtomic, type ExportOptions } from '../onnx/export.js';
import { checkTritonName, tritonConfig, tritonLabels } from '../tasks/triton.js';
import { classify } from '../tasks/classify.js';
import { evaluate, listDataset, readClassMap } from '../tasks/eval.js';
import { listModels, resolveModel } from '../models/index.js';
import { fetchWeights, stderrProgress } from '../weights/hub.js';
import { saveSafetensors } from '../weights/safetensors.js';
import { formatVerify, loadSeeds, summarize, verifySeeds, DEFAULT_SEEDS } from '../tasks/verify.js';
import { readNpy, writeNpy } from '../weights/npy.js';
import { InputError } from '../weights/tensor.js';
import { grad } from './grad.js';
import { idxDataset } from '../data/datasets.js';
import { findIdxFiles } from '../data/idx.js';
import { DataLoader, evalTransform } from '../data/loader.js';
import { evaluateWeights, loaderSource } from '../train/fit.js';
import { train } from './train.js';
import { serve } from './serve.js';
import { int, log, oneOf, required, str, UsageError, type Command, type Values } from './args.js';
import { checkInputFile, checkOutputDir, checkOutputFile } from './paths.js';
import { DEVICE_OPTIONS, deviceFrom } from './device.js';
import { imagesIn, keyScheme, loadWeights, runPreprocess, SCHEMES, trainedRun as trainedRunOf, WEIGHT_OPTIONS } from './model-args.js';

const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;
const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const thousands = (n: number) => n.toLocaleString('en-US');

function sizeOpt(v: Values): number | undefined {
  return int(v, 'size');
}

const scheme = (v: Values) => keyScheme(str(v, 'keys'));
const withWeights = (model: Model, v: Values, pretrained: boolean) => loadWeights(model, str(v, 'weights'), str(v, 'keys'), pretrained);
const trainedRun = (name: string, v: Values) => trainedRunOf(name, str(v, 'weights'));

const PRECISION_OPTIONS: Command['options'] = {
  precision: { type: 'string', arg: 'fp32|fp16|int8', help: 'fp16 runs a float16 graph (fp32 in and out; for GPUs), int8 a model quantized on --calib images (default fp32)' },
  calib: { type: 'string', arg: 'DIR', help: 'calibration images for --precision int8' },
  ...DEVICE_OPTIONS,
};

/** A session for `--precision fp16|int8` (int8 calibrated on --calib) on --device, or undefined for fp32. */
async function precisionSession(model: Model, v: Values) {
  const precision = oneOf(v, 'precision', ['fp32', 'fp16', 'int8'] as const) ?? 'fp32';
  if (precision === 'fp32') return undefined;
  if (precision === 'fp16') return createSession(model.toOnnx({ float16: true, outputs: ['logits'] }), deviceFrom(v));
  const dir = required(v, 'calib', '--precision int8 calibrates activation ranges on real images');
  return createSession(int8Onnx(model, await calibrate(model, imageBatches(model, imagesIn(dir)))), deviceFrom(v));
}

/** The preprocessing flags every image command takes (they override the weights' own pipeline). */
const PREPROCESS_OPTIONS: Command['options'] = {
  size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
  'crop-pct': { type: 'string', arg: 'F', help: 'centre crop fraction (timm crop_pct)' },
  'crop-mode': { type: 'string', arg: 'center|squash|border', help: 'how the image is fit to the size' },
  interpolation: { type: 'string', arg: 'bilinear|bicubic', help: 'resize filter' },
  'resize-backend': { type: 'string', arg: 'pil|cv2', help: "PIL (timm) or OpenCV (PaddleClas) resize" },
  mean: { type: 'string', arg: 'R,G,B', help: 'normalization mean' },
  std: { type: 'string', arg: 'R,G,B', help: 'normalization std' },
  'exif-rotate': { type: 'string', arg: 'on|off', help: 'apply EXIF orientation (default: as the reference: cv2 on, PIL off)' },
  'max-pixels': { type: 'string', arg: 'N', help: `refuse larger images (default ${DEFAULT_MAX_PIXELS}, PIL's limit)` },
};

function triple(v: Values, key: string): [number, number, number] | undefined {
  const x = str(v, key);
  if (x === undefined) return undefined;
  const n = x.split(',').map(Number);
  if (n.length !== 3 || n.some((d) => !Number.isFinite(d))) throw new UsageError(`--${key} takes three numbers, like 0.485,0.456,0.406`);
  if (key === 'std' && n.some((d) => d <= 0)) throw new UsageError(`--std takes three positive numbers (it divides), got ${x}`);
  return n as [number, number, number];
}

function preprocessFlags(v: Values): PreprocessOverrides {
  const o: PreprocessOverrides = {};
  const cropPct = str(v, 'crop-pct');
  if (cropPct !== undefined) o.cropPct = Number(cropPct);
  o.cropMode = oneOf(v, 'crop-mode', ['center', 'squash', 'border'] as const);
  o.interpolation = oneOf(v, 'interpolation', ['bilinear', 'bicubic'] as const);
  o.backend = oneOf(v, 'resize-backend', ['pil', 'cv2'] as const);
  o.mean = triple(v, 'mean');
  o.std = triple(v, 'std');
  const exif = oneOf(v, 'exif-rotate', ['on', 'off'] as const);
  if (exif) o.exifRotate = exif === 'on';
  o.maxPixels = int(v, 'max-pixels');
  for (const k of Object.keys(o) as (keyof PreprocessOverrides)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function oneName(p: string[], what = 'a model name'): string {
  if (p.length !== 1) throw new UsageError(p.length ? `expected one model name, got ${p.length}` : `expected ${what}`);
  return p[0]!;
}

const list: Command = {
  usage: '[PATTERN] [--source timm|paddleclas] [--family NAME] [--pretrained] [--json]',
  summary: "List model names matching a wildcard pattern (case-insensitive), like timm's list_models.",
  options: {
    source: { type: 'string', arg: 'timm|paddleclas', help: 'only models from this zoo' },
    family: { type: 'string', arg: 'NAME', help: 'only this family (resnet, ...)' },
    pretrained: { type: 'boolean', help: 'list every name.tag weight set instead of architectures' },
    json: { type: 'boolean', help: 'print a JSON array' },
  },
  async run(p, v) {
    const source = str(v, 'source');
    if (source && source !== 'timm' && source !== 'paddleclas') throw new UsageError(`--source must be timm or paddleclas, got "${source}"`);
    const names = listModels(p[0] ?? '*', { source: source as 'timm' | 'paddleclas' | undefined, family: str(v, 'family'), pretrained: !!v['pretrained'] });
    if (!names.length && !v['json']) {
      process.stderr.write(`tsimm list: no model matches "${p[0] ?? '*'}"${source || str(v, 'family') ? ' with these filters' : ''}; try a wildcard, like '*${(p[0] ?? '').replace(/\*/g, '')}*'\n`);
      return 1;
    }
    out(v['json'] ? json(names) : names.join('\n'));
    return names.length ? 0 : 1;
  },
};

const info: Command = {
  usage: 'NAME[.TAG] [--size N] [--layers] [--params] [--json]',
  summary: 'Show a model: pretrained config, weight source, params, MACs and FLOPs counted from the exported graph.',
  options: {
    size: { type: 'string', arg: 'N', help: 'input size to count at (default: the pretrained config)' },
    'num-classes': { type: 'string', arg: 'N', help: 'classifier width (default 1000)' },
    layers: { type: 'boolean', help: 'per-layer table: output shape, params, MACs' },
    params: { type: 'boolean', help: 'list every parameter (checkpoint key) with its shape' },
    json: { type: 'boolean', help: 'print JSON' },
  },
  async run(p, v) {
    const spec = oneName(p);
    const { entry, cfg } = resolveModel(spec);
    const model = createModel(spec, { inputSize: sizeOpt(v), numClasses: int(v, 'num-classes') });
    const c = model.counts();
    if (v['json']) {
      out(
        json({
          name: entry.name,
          source: entry.source,
          family: entry.family,
          architecture: entry.description,
          aliases: entry.aliases,
          pretrainedCfg: cfg,
          tags: entry.cfgs.map((x) => x.tag),
          counts: { inputSize: c.inputSize, params: c.params, bnBuffers: c.bufferParams, macs: c.macs, flops: c.flops, convention: 'FLOPs = 2 x MACs (conv + FC), batch 1' },
          featureInfo: model.featureInfo,
          layers: v['layers'] ? c.layers : undefined,
          parameters: v['params'] ? model.parameters() : undefined,
        }),
      );
      return 0;
    }
    const w = cfg.weights;
    const lines = [
      `${entry.name}  (${entry.source}, ${entry.family} family)`,
      `  architecture:  ${entry.description}`,
      entry.aliases.length ? `  same weights as: ${entry.aliases.join(', ')}` : '',
      `  pretrained:    ${cfg.tag}${entry.cfgs.length > 1 ? ` (default; also ${entry.cfgs.slice(1).map((x) => x.tag).join(', ')})` : ''}`,
      `  preprocessing: input ${cfg.inputSize.join('x')}, crop_pct ${cfg.cropPct.toFixed(3)}, ${cfg.interpolation} (${cfg.resizeBackend === 'pil' ? 'PIL' : 'OpenCV'}), mean ${cfg.mean.join('/')}, std ${cfg.std.join('/')}`,
      w ? `  weights:       ${w.hfHubId ? `hf://${w.hfHubId}/model.safetensors` : w.url} (${w.format}, ${w.keys} keys${w.license ? `, ${w.license}` : ''})` : '',
      `  at ${c.inputSize.join('x')}:   params ${thousands(c.params)} (${(c.params / 1e6).toFixed(2)} M), BN buffers ${thousands(c.bufferParams)}`,
      `                 MACs ${(c.macs / 1e9).toFixed(3)} G, FLOPs ${(c.flops / 1e9).toFixed(3)} G (FLOPs = 2 x MACs of conv + FC, batch 1)`,
      `  feature levels (features_only): ${model.featureInfo.map((f) => `${f.index}: ${f.module} ${f.channels}ch /${f.reduction}`).join(', ')}`,
    ].filter(Boolean);
    if (v['layers']) {
      lines.push('', `  ${'layer'.padEnd(34)} ${'op'.padEnd(18)} ${'output'.padEnd(20)} ${'params'.padStart(12)} ${'MACs'.padStart(14)}`);
      for (const l of c.layers) {
        lines.push(`  ${(l.name || '-').padEnd(34)} ${l.op.padEnd(18)} ${l.output.join('x').padEnd(20)} ${thousands(l.params).padStart(12)} ${thousands(l.macs).padStart(14)}`);
      }
    }
    if (v['params']) {
      lines.push('');
      for (const q of model.parameters()) lines.push(`  ${q.name} [${q.shape.join(', ')}]`);
    }
    out(lines.join('\n'));
    return 0;
  },
};

const infer: Command = {
  usage: 'NAME[.TAG] --input X.npy --output Y.npy [--weights FILE] [--features]',
  summary: 'Run a model on a float32 NCHW .npy batch and write the logits (or pooled features) as .npy.',
  options: {
    ...WEIGHT_OPTIONS,
    input: { type: 'string', short: 'i', arg: 'X.npy', help: 'float32 [N, 3, H, W] input (any H, W the model accepts)' },
    output: { type: 'string', short: 'o', arg: 'Y.npy', help: 'where to write the [N, classes] logits' },
    features: { type: 'boolean', help: 'write the pooled pre-logits features instead of the logits' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    ...DEVICE_OPTIONS,
  },
  async run(p, v) {
    const name = oneName(p);
    const input = readNpy(checkInputFile(required(v, 'input', 'the .npy batch to run'), '--input'));
    const output = checkOutputFile(required(v, 'output', 'the .npy file to write'), '--output', 'logits.npy');
    if (input.shape.length !== 4) throw new InputError(`${str(v, 'input')} has shape (${input.shape.join(', ')}); infer needs a 4-D float32 NCHW batch [N, 3, H, W]`);
    const [, ch, h, w] = input.shape as [number, number, number, number];
    if (ch !== 3) {
      const nhwc = w === 3 || w === 1 || w === 4;
      throw new InputError(
        `${str(v, 'input')} has shape (${input.shape.join(', ')}); infer needs a float32 NCHW batch [N, 3, H, W]${nhwc ? `: this looks NHWC — transpose it to NCHW first (numpy: x.transpose(0, 3, 1, 2), giving (${[input.shape[0], w, ch, h].join(', ')}))` : ''}`,
      );
    }
    const model = createModel(name, { inputSize: [h, w] });
    await withWeights(model, v, true);
    log(`running ${model.name} on [${input.shape.join(', ')}]`);
    // One-shot: the weights are let go once in the session's file (peak RSS about ONNX Runtime's own).
    const session = await model.createSession({ threads: int(v, 'threads'), releaseWeights: true, ...deviceFrom(v) });
    try {
      const result = await model.run(input, session);
      writeNpy(output, v['features'] ? result.features : result.logits);
    } finally {
      await session.release();
    }
    return 0;
  },
};

const exportCmd: Command = {
  usage: 'NAME (-o FILE.onnx | --triton DIR [--max-batch 8] [--name NAME] [--version 1] [--triton-gpu]) [--size N] [--weights FILE|--pretrained] [--no-fold-bn] [--fp16] [--external] [--features]',
  summary: 'Export a model to ONNX (opset 17, dynamic batch, BatchNorm folded into convs), or as a Triton model repository.',
  options: {
    output: { type: 'string', short: 'o', arg: 'FILE.onnx', help: 'output file (weights over 2 GB go to FILE.onnx.data)' },
    triton: { type: 'string', arg: 'DIR', help: 'write a Triton model repository instead: DIR/NAME/{config.pbtxt, labels.txt, preprocess.json, VERSION/model.onnx}' },
    'max-batch': { type: 'string', arg: 'N', help: 'Triton max_batch_size (default 8); dynamic batching prefers 2, 4, .. up to N' },
    name: { type: 'string', arg: 'NAME', help: 'Triton model name, the directory under DIR (default: the model name)' },
    version: { type: 'string', arg: 'N', help: 'Triton model version directory (default 1)' },
    'triton-gpu': { type: 'boolean', help: 'Triton instance_group KIND_GPU (default KIND_CPU)' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    ...WEIGHT_OPTIONS,
    pretrained: { type: 'boolean', help: "the registry's pretrained weights (default: deterministic random weights)" },
    'num-classes': { type: 'string', arg: 'N', help: 'classifier width (default 1000, or the --weights run\'s)' },
    'no-fold-bn': { type: 'boolean', help: 'keep BatchNormalization nodes (debugging parity)' },
    fp16: { type: 'boolean', help: "store weights as float16 (half the size; ORT's x64 CPU EP computes in fp32)" },
    external: { type: 'boolean', help: 'always write weights to an external data file' },
    features: { type: 'boolean', help: 'also output the pooled pre-logits features' },
    'features-only': { type: 'boolean', help: 'output multi-scale feature maps (feature0..4) instead of logits' },
    'out-indices': { type: 'string', arg: 'I,J,..', help: 'feature levels for --features-only (default all)' },
  },
  async run(p, v) {
    const name = oneName(p);
    const tritonDir = str(v, 'triton');
    if (tritonDir !== undefined && str(v, 'output') !== undefined) throw new UsageError('give -o FILE.onnx or --triton DIR, not both');
    if (tritonDir === undefined) {
      for (const k of ['max-batch', 'name', 'version', 'triton-gpu']) if (v[k] !== undefined) throw new UsageError(`--${k} is for --triton DIR (a Triton model repository)`);
    }
    // Checked before any work: a Triton repository's directory, else the .onnx file.
    const output = tritonDir === undefined ? checkOutputFile(required(v, 'output', 'where to write the .onnx file (or --triton DIR)'), '--output', `${p[0]}.onnx`) : undefined;
    const triton = tritonDir === undefined ? undefined : tritonTarget(name, tritonDir, v);
    const outIndices = str(v, 'out-indices')?.split(',').map(Number);
    const featuresOnly = !!v['features-only'] || !!outIndices;
    // A fine-tuned run (config.json beside --weights) sets the classes, channels, size and preprocessing.
    const run = featuresOnly ? undefined : trainedRun(name, v);
    const model = createModel(name, { inputSize: sizeOpt(v) ?? run?.size, numClasses: int(v, 'num-classes') ?? run?.numClasses, ...(run ? { inChans: run.inChans } : {}), featuresOnly, outIndices });
    await withWeights(model, v, !!v['pretrained']);
    if (!model.weights) {
      process.stderr.write(`tsimm export: no --weights or --pretrained: exporting ${model.name} with deterministic random weights\n`);
      model.initWeights();
    }
    const outputs = featuresOnly ? model.graph.outputs : v['features'] ? ['logits', 'features'] : ['logits'];
    const opts = { foldBatchNorm: !v['no-fold-bn'], float16: !!v['fp16'], external: !!v['external'], outputs };
    // The preprocessing a consumer (a browser page, another runtime) must apply, beside the model.
    const weightsFile = str(v, 'weights');
    const weights = weightsFile ?? (v['pretrained'] ? `${model.name}.${model.cfg.tag}` : 'random (initWeights)');
    const preprocess = resolvePreprocess(model.cfg, { ...runPreprocess(run), size: model.inputSize });
    const sidecar = { model: model.name, tag: !weightsFile && v['pretrained'] ? model.cfg.tag : null, weights, inputSize: [model.inChans, ...model.inputSize], numClasses: model.numClasses, preprocess, outputs };
    if (triton) return exportTriton(model, triton, { ...opts, sidecar, preprocess, classNames: run?.classNames });
    const r = model.exportOnnx(output!, opts);
    writeChunksAtomic(`${output}.json`, [new TextEncoder().encode(json(sidecar))]);
    out(`${output}: ${(r.bytes / 1e6).toFixed(1)} MB${r.externalBytes ? ` + ${output}.data ${(r.externalBytes / 1e6).toFixed(1)} MB` : ''} (input [N, ${model.inChans}, ${model.inputSize.join(', ')}], opset 17); preprocessing in ${output}.json`);
    return 0;
  },
};

interface TritonTarget {
  dir: string;
  name: string;
  version: number;
  maxBatch: number;
  gpu: boolean;
}

/** `--triton DIR` and its flags, checked before the model is built. */
function tritonTarget(model: string, dir: string, v: Values): TritonTarget {
  const name = str(v, 'name') ?? resolveModel(model).entry.name;
  if (!checkTritonName(name)) throw new UsageError(`--name "${name}" is not a Triton model name: use letters, digits, _ . - (it names the directory DIR/NAME)`);
  checkOutputDir(dir, '--triton');
  return { dir, name, version: int(v, 'version') ?? 1, maxBatch: int(v, 'max-batch') ?? 8, gpu: !!v['triton-gpu'] };
}

/**
 * The Triton model repository: VERSION/model.onnx, labels.txt, preprocess.json, then config.pbtxt last, so a
 * server polling the repository never sees a config without its model. Shapes come from the exported graph.
 */
function exportTriton(model: Model, t: TritonTarget, o: ExportOptions & { external: boolean; outputs: string[]; sidecar: object; preprocess: PreprocessConfig; classNames?: string[] }): number {
  const modelDir = join(t.dir, t.name);
  const versionDir = join(modelDir, String(t.version));
  mkdirSync(versionDir, { recursive: true });
  const onnx = join(versionDir, 'model.onnx');
  const { sidecar, preprocess, classNames, ...opts } = o;
  const r = model.exportOnnx(onnx, opts);
  const enc = (s: string) => [new TextEncoder().encode(s)];
  const dims = (tensor: string) => model.graph.shapes.get(tensor)!.slice(1) as number[];
  const labelled = o.outputs.includes('logits');
  if (labelled) writeChunksAtomic(join(modelDir, 'labels.txt'), enc(tritonLabels(model.numClasses, classNames)));
  writeChunksAtomic(join(modelDir, 'preprocess.json'), enc(json(sidecar)));
  const input = model.graph.inputs[0]!;
  const config = tritonConfig({
    name: t.name,
    maxBatchSize: t.maxBatch,
    input: { name: input, dims: dims(input) },
    outputs: o.outputs.map((name) => ({ name, dims: dims(name), ...(name === 'logits' ? { labelFilename: 'labels.txt' } : {}) })),
    kind: t.gpu ? 'KIND_GPU' : 'KIND_CPU',
    preprocess,
    meta: { tsimm_model: model.name, tsimm_weights: (sidecar as { weights: string }).weights },
  });
  writeChunksAtomic(join(modelDir, 'config.pbtxt'), enc(config));
  const mb = ((r.bytes + r.externalBytes) / 1e6).toFixed(1);
  out(`${modelDir}: Triton model "${t.name}" version ${t.version} (${t.version}/model.onnx ${mb} MB, config.pbtxt, ${labelled ? 'labels.txt, ' : ''}preprocess.json); max_batch_size ${t.maxBatch}, input "${input}" [N, ${dims(input).join(', ')}]; serve with: tritonserver --model-repository ${t.dir}`);
  return 0;
}

const verify: Command = {
  usage: '[PATTERN] [--seeds FILE] [--json]',
  summary: "Compare every seed model's published params/FLOPs with ours; explain each difference.",
  options: {
    seeds: { type: 'string', arg: 'FILE', help: `seed table (default ${DEFAULT_SEEDS})` },
    json: { type: 'boolean', help: 'print JSON rows' },
  },
  async run(p, v) {
    const seeds = loadSeeds(str(v, 'seeds'));
    const pattern = p[0] ? new RegExp(`^${p[0].replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i') : undefined;
    const rows = verifySeeds(seeds, pattern ? (n) => pattern.test(n) : undefined);
    if (!rows.length) {
      process.stderr.write(`tsimm verify: no seed model matches "${p[0]}"\n`);
      return 1;
    }
    out(v['json'] ? json({ rows, summary: summarize(rows) }) : formatVerify(rows));
    return rows.some((r) => r.status === 'unexplained') ? 1 : 0;
  },
};

const pull: Command = {
  usage: 'NAME[.TAG]...',
  summary: 'Download pretrained weights into the cache (the Hugging Face hub cache for hub files) and print their paths.',
  options: {},
  async run(p) {
    if (!p.length) throw new UsageError('expected one or more model names');
    for (const spec of p) {
      const { entry, cfg } = resolveModel(spec);
      if (!cfg.weights) throw new InputError(`${entry.name}.${cfg.tag} has no pretrained weights`);
      out(await fetchWeights(cfg.weights, { onProgress: stderrProgress() }));
    }
    return 0;
  },
};

const convert: Command = {
  usage: 'IN OUT.safetensors --model NAME [--keys SCHEME]',
  summary: 'Normalize a checkpoint (.pth, .pdparams, .safetensors) into timm-keyed float32 safetensors for NAME.',
  options: {
    model: { type: 'string', short: 'm', arg: 'NAME', help: 'the architecture the checkpoint belongs to' },
    keys: { type: 'string', arg: 'SCHEME', help: `key scheme of IN (default: detected): ${SCHEMES.join(', ')}` },
  },
  async run(p, v) {
    if (p.length !== 2) throw new UsageError('expected IN and OUT');
    const model = createModel(required(v, 'model', 'the architecture decides the key map and the shapes checked'));
    checkInputFile(p[0]!, 'IN');
    checkOutputFile(p[1]!, 'OUT', 'model.safetensors');
    model.loadCheckpoint(p[0]!, scheme(v));
    const tensors = model.stateDict();
    saveSafetensors(p[1]!, tensors, { format: 'pt', 'tsimm.model': model.name });
    out(`${p[1]}: ${tensors.size} tensors for ${model.name}`);
    return 0;
  },
};

interface Shard {
  index: number;
  count: number;
}

const SHARD_HELP = 'this process takes shard K of N (0-based): the images at positions i with i % N == K';

/** `--shard K/N`, 0 ≤ K < N. */
function shardOpt(v: Values): Shard | undefined {
  const s = str(v, 'shard');
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(`--shard takes K/N with 0 ≤ K < N (0/4 is the first of four shards), got "${s}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

const shardName = (s: Shard) => `${s.index}/${s.count}`;
const inShard = <T>(xs: readonly T[], s: Shard): T[] => xs.filter((_, i) => i % s.count === s.index);

/** predict's share of its images: positions in the sorted paths (so every process agrees), kept in the order given. */
function shardImages(images: string[], s?: Shard): string[] {
  if (!s) return images;
  const mine = new Set(inShard([...images].sort(), s));
  return images.filter((f) => mine.has(f));
}

const predict: Command = {
  usage: 'MODEL IMAGE... [--topk 5] [--weights FILE] [--shard K/N] [--json]',
  summary: 'Classify images with the pretrained weights (or --weights) and the preprocessing they were evaluated with.',
  options: {
    topk: { type: 'string', short: 'k', arg: 'K', help: 'how many classes per image (default 5)' },
    ...WEIGHT_OPTIONS,
    batch: { type: 'string', arg: 'N', help: 'images per inference batch (default 8)' },
    shard: { type: 'string', arg: 'K/N', help: `${SHARD_HELP} of the paths sorted (one process per shard)` },
    features: { type: 'boolean', help: 'also print the pooled pre-logits features (with --json)' },
    json: { type: 'boolean', help: 'print JSON' },
    ...PRECISION_OPTIONS,
    ...PREPROCESS_OPTIONS,
  },
  async run(p, v) {
    if (p.length < 2) throw new UsageError('expected a model name and at least one image');
    const [name, ...given] = p as [string, ...string[]];
    const images = shardImages(given, shardOpt(v));
    const run = trainedRun(name, v);
    const model = createModel(name, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
    await withWeights(model, v, true);
    const lowered = await precisionSession(model, v);
    const session = lowered ?? (await model.createSession({ releaseWeights: true, ...deviceFrom(v) }));
    const preprocess = { ...runPreprocess(run), ...preprocessFlags(v) };
    const results = await classify(model, images, { topk: int(v, 'topk') ?? 5, batchSize: int(v, 'batch'), preprocess, features: !!v['features'] && !lowered, session, ...(run?.classNames ? { classNames: run.classNames } : {}) });
    await session.release();
    if (v['json']) {
      out(json(results.map((r) => ({ ...r, features: r.features ? Array.from(r.features) : undefined }))));
    } else {
      const lines: string[] = [];
      for (const r of results) {
        if (r.error) continue; // said once, on stderr
        lines.push(r.image);
        for (const [i, q] of (r.predictions ?? []).entries()) lines.push(`  ${i + 1}. ${(q.prob * 100).toFixed(2).padStart(6)}%  ${String(q.index).padStart(4)} ${q.wnid ?? ''}  ${q.label}`);
      }
      if (lines.length) out(lines.join('\n'));
    }
    for (const r of results) if (r.error) process.stderr.write(`tsimm predict: ${r.error.includes(r.image) ? r.error : `${r.image}: ${r.error}`}\n`);
    return results.some((r) => r.error) ? 1 : 0;
  },
};

/** timm validate.py's summary line: accuracy and (error). */
const accLine = (top1: number, top5: number) => ` * Acc@1 ${top1.toFixed(3)} (${(100 - top1).toFixed(3)})  Acc@5 ${top5.toFixed(3)} (${(100 - top5).toFixed(3)})`;

/** The hit counts behind the percentages (exact: top1 is 100 × hits / n), which shards add up. */
const counts = (top1: number, top5: number, n: number) => ({ top1Hits: Math.round((top1 * n) / 100), top5Hits: Math.round((top5 * n) / 100) });

interface EvalJson {
  model: string;
  weights: string;
  shard?: string;
  listed: number;
  evaluated: number;
  top1Hits: number;
  top5Hits: number;
  loss?: number;
  failed?: { file: string; error: string }[];
  seconds?: number;
}

/** `eval --merge A.json B.json ...`: the shards' hits added up, as one Acc@1/Acc@5 over all their images. */
async function mergeEvals(files: string[], v: Values): Promise<number> {
  if (!files.length) throw new UsageError('--merge expects the `eval --json` files of the shards');
  const parts = files.map((f) => {
    let j: EvalJson;
    try {
      j = JSON.parse(readFileSync(checkInputFile(f, '--merge'), 'utf8')) as EvalJson;
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`${f} is not JSON: write it with tsimm eval --json (${(e as Error).message})`);
    }
    if (typeof j?.evaluated !== 'number' || typeof j.top1Hits !== 'number' || typeof j.top5Hits !== 'number') throw new InputError(`${f} has no top1Hits/top5Hits/evaluated counts: write it with tsimm eval --json (this version)`);
    return { file: f, ...j };
  });
  const first = parts[0]!;
  for (const q of parts) {
    if (q.model !== first.model || q.weights !== first.weights) throw new InputError(`${q.file} evaluated ${q.model} (${q.weights}) but ${first.file} ${first.model} (${first.weights}); merge the shards of one run`);
  }
  const shards = parts.map((q) => q.shard).filter((s): s is string => s !== undefined);
  const dup = shards.find((s, i) => shards.indexOf(s) !== i);
  if (dup) throw new InputError(`shard ${dup} is given twice; each shard's file once`);
  const of = new Set(shards.map((s) => s.split('/')[1]));
  if (shards.length === parts.length && of.size === 1 && shards.length < Number([...of][0])) {
    process.stderr.write(`tsimm eval: merging ${shards.length} of ${[...of][0]} shards; the result covers only their images\n`);
  }
  const sum = (f: (q: (typeof parts)[number]) => number) => parts.reduce((a, q) => a + f(q), 0);
  const evaluated = sum((q) => q.evaluated);
  if (!evaluated) throw new InputError(`the ${parts.length} files evaluated no images`);
  const hits1 = sum((q) => q.top1Hits);
  const hits5 = sum((q) => q.top5Hits);
  const top1 = (100 * hits1) / evaluated;
  const top5 = (100 * hits5) / evaluated;
  const loss = parts.every((q) => typeof q.loss === 'number') ? sum((q) => q.loss! * q.evaluated) / evaluated : undefined;
  const merged = { model: first.model, weights: first.weights, merged: parts.length, shards, listed: sum((q) => q.listed), evaluated, top1Hits: hits1, top5Hits: hits5, top1, top5, ...(loss !== undefined ? { loss } : {}), failed: parts.flatMap((q) => q.failed ?? []), seconds: sum((q) => q.seconds ?? 0) };
  if (v['json']) out(json(merged));
  else out([`${merged.model} (${merged.weights}): ${evaluated} of ${merged.listed} images evaluated in ${parts.length} parts${merged.failed.length ? `, ${merged.failed.length} failed or skipped` : ''}`, `${accLine(top1, top5)}${loss !== undefined ? `  loss ${loss.toFixed(4)}` : ''}`].join('\n'));
  return 0;
}

function isIdxFolder(dir: string): boolean {
  try {
    findIdxFiles(dir, 'test');
    return true;
  } catch {
    return false;
  }
}

/** `eval` on a folder of IDX files (MNIST/Fashion-MNIST): its t10k test split, through the training data loader. */
async function evalIdx(name: string, dir: string, v: Values, shard?: Shard): Promise<number> {
  const run = trainedRun(name, v);
  const all = await idxDataset(dir, { split: 'test', ...(int(v, 'limit') ? { limit: int(v, 'limit') } : {}) });
  const ds = shard ? all.subset(inShard([...all.samples.keys()], shard)) : all;
  if (!ds.length) throw new InputError(`shard ${shardName(shard!)} of ${dir} holds no images (${all.length} in the test split); use fewer shards`);
  const model = createModel(name, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
  await withWeights(model, v, true);
  if (model.numClasses !== ds.numClasses) throw new InputError(`${dir} has ${ds.numClasses} classes but the model has ${model.numClasses}; evaluate weights trained on it (--weights RUN/best.safetensors)`);
  const pre = resolvePreprocess(model.cfg, { ...runPreprocess(run), ...preprocessFlags(v), size: model.inputSize });
  const batch = int(v, 'batch') ?? 32;
  const workers = int(v, 'workers', 0);
  const loader = new DataLoader(ds, { batchSize: batch, shape: [model.inChans, ...model.inputSize], transform: evalTransform(pre, { channels: model.inChans as 1 | 3 }), shuffle: false, ...(workers !== undefined ? { workers } : {}) });
  const t0 = performance.now();
  try {
    const r = await evaluateWeights(model, model.weights!, loaderSource(loader, batch), 0, deviceFrom(v));
    const seconds = (performance.now() - t0) / 1000;
    const weights = str(v, 'weights') ?? `${model.name}.${model.cfg.tag}`;
    if (v['json']) out(json({ model: model.name, weights, layout: 'idx', ...(shard ? { shard: shardName(shard) } : {}), evaluated: r.count, listed: ds.length, top1: r.top1, top5: r.top5, ...counts(r.top1, r.top5, r.count), loss: r.loss, seconds }));
    else out([`${model.name} (${weights}): ${r.count} of ${ds.length} IDX test images evaluated${shard ? ` (shard ${shardName(shard)})` : ''}`, `${accLine(r.top1, r.top5)}  loss ${r.loss.toFixed(4)}`, `   ${(r.count / seconds).toFixed(1)} images/s (${seconds.toFixed(1)} s)`].join('\n'));
  } finally {
    await loader.close();
  }
  return 0;
}

const evalCmd: Command = {
  usage: 'MODEL DIR [--batch 32] [--limit N] [--labels FILE] [--class-map FILE] [--shard K/N] [--json] | --merge SHARD.json...',
  summary: 'Top-1/top-5 accuracy over an ImageFolder tree (wnid folders), a flat folder with a labels file, or IDX files (test split).',
  options: {
    batch: { type: 'string', arg: 'N', help: 'batch size (default 32)' },
    limit: { type: 'string', arg: 'N', help: 'evaluate only the first N images (of the whole listing, before --shard)' },
    shard: { type: 'string', arg: 'K/N', help: `${SHARD_HELP} of the listing (class folders and their files sorted; a --labels file's line order; IDX file order); --json prints the counts --merge adds up` },
    merge: { type: 'boolean', help: 'merge `eval --json` outputs (one per shard, given as FILE...) into one Acc@1/Acc@5' },
    labels: { type: 'string', arg: 'FILE', help: 'flat layout: lines "file label" (index or wnid), or LOC_val_solution.csv' },
    'class-map': { type: 'string', arg: 'FILE', help: 'class names in index order (one per line) for non-ImageNet folders' },
    ...WEIGHT_OPTIONS,
    workers: { type: 'string', arg: 'N', help: 'preprocessing worker threads (default: cores − 1)' },
    json: { type: 'boolean', help: 'print JSON' },
    ...PRECISION_OPTIONS,
    ...PREPROCESS_OPTIONS,
  },
  async run(p, v) {
    if (v['merge']) return mergeEvals(p, v);
    if (p.length !== 2) throw new UsageError('expected a model name and a directory');
    const shard = shardOpt(v);
    if (isIdxFolder(p[1]!)) return evalIdx(p[0]!, p[1]!, v, shard);
    const classMapFile = str(v, 'class-map');
    const labels = str(v, 'labels');
    if (labels) checkInputFile(labels, '--labels');
    const run = trainedRun(p[0]!, v);
    // A fine-tuned run's class names map its folders (ImageFolder of the user's classes).
    const runMap = run?.classNames ? new Map(run.classNames.map((c, i) => [c, i])) : undefined;
    const listed = listDataset(p[1]!, { labels, classMap: classMapFile ? readClassMap(checkInputFile(classMapFile, '--class-map')) : runMap });
    // --limit cuts the whole listing first, so the shards of a limited run add up to the unsharded one.
    const limit = int(v, 'limit');
    const samples = limit ? listed.samples.slice(0, limit) : listed.samples;
    const data = shard ? { ...listed, samples: inShard(samples, shard), skipped: inShard(listed.skipped, shard) } : { ...listed, samples };
    const model = createModel(p[0]!, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
    await withWeights(model, v, true);
    if (shard && !data.samples.length) {
      // More shards than images: this one has nothing to do, and says so in a form --merge adds up.
      const empty = { model: model.name, weights: str(v, 'weights') ?? `${model.name}.${model.cfg.tag}`, layout: data.layout, shard: shardName(shard), listed: data.skipped.length, evaluated: 0, top1Hits: 0, top5Hits: 0, top1: 0, top5: 0, failed: data.skipped, seconds: 0 };
      out(v['json'] ? json(empty) : `${model.name}: shard ${shardName(shard)} holds no images (${samples.length} listed in all)`);
      return 0;
    }
    const bar = process.stderr.isTTY
      ? (done: number, total: number, ips: number) =>
          process.stderr.write(`\r${model.name}: ${done}/${total} images, ${ips.toFixed(1)} img/s, ETA ${ips > 0 ? Math.round((total - done) / ips) : '?'} s   ${done >= total ? '\n' : ''}`)
      : undefined;
    const session = (await precisionSession(model, v)) ?? (await model.createSession({ releaseWeights: true, ...deviceFrom(v) }));
    const r = await evaluate(model, data, { batchSize: int(v, 'batch'), preprocess: { ...runPreprocess(run), ...preprocessFlags(v) }, weights: str(v, 'weights'), onProgress: bar, workers: int(v, 'workers', 0), session });
    await session.release();
    for (const f of r.failed) process.stderr.write(`tsimm eval: skipped ${f.file}: ${f.error}\n`);
    if (v['json']) out(json({ ...r, ...counts(r.top1, r.top5, r.evaluated), ...(shard ? { shard: shardName(shard) } : {}) }));
    else {
      const pp = r.preprocess;
      out(
        [
          `${r.model} (${r.weights}): ${r.evaluated} of ${r.listed} images evaluated${shard ? ` (shard ${shardName(shard)})` : ''}${r.failed.length ? `, ${r.failed.length} failed or skipped (listed above on stderr)` : ''}`,
          accLine(r.top1, r.top5),
          `   preprocess: ${pp.backend === 'pil' ? 'PIL' : 'OpenCV'} ${pp.interpolation}, size ${pp.size.join('x')}, ${pp.backend === 'cv2' ? `resize_short ${pp.resizeShort ?? Math.round(pp.size[0] / pp.cropPct)}` : `crop_pct ${pp.cropPct}`}, crop ${pp.cropMode}, mean ${pp.mean.join('/')}, std ${pp.std.join('/')}`,
          `   ${r.imagesPerSecond.toFixed(1)} images/s (${r.seconds.toFixed(1)} s)`,
        ].join('\n'),
      );
    }
    return 0;
  },
};

const preprocessCmd: Command = {
  usage: 'IMAGE --model NAME -o X.npy [preprocessing flags]',
  summary: 'Write the exact float32 [1, 3, H, W] tensor the model would see, to diff against another pipeline.',
  options: {
    model: { type: 'string', short: 'm', arg: 'NAME', help: 'whose preprocessing to use' },
    output: { type: 'string', short: 'o', arg: 'X.npy', help: 'output file' },
    ...PREPROCESS_OPTIONS,
  },
  async run(p, v) {
    if (p.length !== 1) throw new UsageError('expected one image');
    const { cfg } = resolveModel(required(v, 'model', 'the model decides the pipeline'));
    const size = sizeOpt(v);
    const config = resolvePreprocess(cfg, { ...preprocessFlags(v), ...(size ? { size } : {}) });
    const output = checkOutputFile(required(v, 'output', 'where to write the tensor'), '--output', 'x.npy');
    const data = await preprocessImage(p[0]!, config);
    writeNpy(output, { shape: [1, 3, ...config.size], data });
    return 0;
  },
};

const list_ = (v: Values, key: string, fallback: string) => (str(v, key) ?? fallback).split(',').map((x) => x.trim()).filter(Boolean);

const bench: Command = {
  usage: 'MODEL... [--batch 1,4,8] [--precision fp32,int8,fp16] [--threads N] [--size N] [--json|--markdown] [--compare FILE.onnx] [--family F | --seed]',
  summary: 'Latency (mean, p50, p95 per batch) and throughput, like the seed pages; results saved as JSON with machine info.',
  options: {
    batch: { type: 'string', arg: 'B,B,..', help: 'batch sizes (default 1,4,8)' },
    precision: { type: 'string', arg: 'P,P,..', help: 'fp32, int8, fp16 (default fp32)' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    warmup: { type: 'string', arg: 'N', help: 'untimed warm-up runs (default 10)' },
    'min-runs': { type: 'string', arg: 'N', help: 'at least this many timed runs (default 50)' },
    'min-seconds': { type: 'string', arg: 'S', help: 'and at least this long (default 5)' },
    compare: { type: 'string', arg: 'FILE.onnx', help: 'time this ONNX model alternately with ours and print the ratio' },
    calib: { type: 'string', arg: 'DIR', help: 'calibration images for int8 (default: random inputs; fine for timing only)' },
    family: { type: 'string', arg: 'NAME', help: 'every seed-page model of this family (resnet, res2net, resnest, regnet, efficientnet)' },
    seed: { type: 'boolean', help: 'every model of the seed pages' },
    'with-preprocess': { type: 'boolean', help: 'also time decode + preprocessing (images/s) on the --calib images or a generated photo' },
    out: { type: 'string', arg: 'DIR', help: 'directory for the results file (default ./bench/results/<machine>/, named by date)' },
    output: { type: 'string', short: 'o', arg: 'FILE.json', help: 'the results file itself (overrides --out)' },
    'no-save': { type: 'boolean', help: 'do not write the results file' },
    json: { type: 'boolean', help: 'print JSON' },
    markdown: { type: 'boolean', help: "print the seed pages' table layout" },
    ...WEIGHT_OPTIONS,
    pretrained: { type: 'boolean', help: 'load the pretrained weights (timing does not depend on them)' },
    ...DEVICE_OPTIONS,
  },
  async run(p, v) {
    let names = [...p];
    const family = str(v, 'family');
    if (family || v['seed']) {
      const seeds = loadSeeds();
      const fam = new Map(allEntries().map((e) => [e.name, e.family]));
      names.push(...Object.keys(seeds).filter((n) => v['seed'] || fam.get(n)?.toLowerCase() === family!.toLowerCase()));
    }
    if (!names.length) throw new UsageError('expected model names, --family or --seed');
    names = [...new Set(names)];
    const precisions = list_(v, 'precision', 'fp32') as Precision[];
    for (const x of precisions) if (!['fp32', 'fp16', 'int8'].includes(x)) throw new UsageError(`--precision takes fp32, int8, fp16; got ${x}`);
    const batches = list_(v, 'batch', '1,4,8').map(Number);
    if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new UsageError('--batch takes positive integers');
    const calibDir = str(v, 'calib');
    const outFile = str(v, 'output');
    if (outFile && !v['no-save']) checkOutputFile(outFile, '--output', 'bench.json');
    const outDir = str(v, 'out');
    if (outDir && !outFile && !v['no-save']) checkOutputDir(outDir, '--out');
    const config = {
      batches,
      precisions,
      threads: int(v, 'threads'),
      ...deviceFrom(v),
      size: sizeOpt(v),
      warmup: int(v, 'warmup', 0) ?? 10,
      minRuns: int(v, 'min-runs') ?? 50,
      minSeconds: Number(str(v, 'min-seconds') ?? 5),
      compare: str(v, 'compare'),
      calib: calibDir ? imagesIn(calibDir) : undefined,
      weights: (m: Model) => withWeights(m, v, !!v['pretrained']),
      log,
    };
    const machine = machineInfo(config.threads, config.device);
    const rows: BenchRow[] = [];
    for (const n of names) rows.push(...(await benchModel(n, config)));
    let preprocess: { imagesPerSecond: number; images: number } | undefined;
    if (v['with-preprocess']) preprocess = await benchPreprocess(names[0]!, config.calib);
    const result = { protocol: PROTOCOL, machine, date: new Date().toISOString(), config: { ...config, weights: undefined, log: undefined }, rows, preprocess };
    if (!v['no-save']) {
      let file = outFile;
      if (!file) {
        const dir = outDir ?? join('bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
        mkdirSync(dir, { recursive: true });
        file = join(dir, `${result.date.slice(0, 19).replace(/:/g, '-')}.json`);
      }
      writeFileSync(file, json(result));
      process.stderr.write(`tsimm bench: results saved to ${resolve(file)}\n`);
    }
    if (v['json']) out(json(result));
    else if (v['markdown']) out(markdownBench(rows, machine));
    else out(formatBench(rows, machine) + (preprocess ? `\n\ndecode + preprocess: ${preprocess.imagesPerSecond.toFixed(1)} images/s (${preprocess.images} images, worker pool)` : ''));
    return 0;
  },
};

/** Decode + preprocess throughput with the worker pool (what eval overlaps with inference). */
async function benchPreprocess(name: string, files?: string[]): Promise<{ imagesPerSecond: number; images: number }> {
  const model = createModel(name);
  let list = files;
  if (!list?.length) {
    const { tmpdir } = await import('node:os');
    const sharp = (await import('sharp')).default;
    const file = join(tmpdir(), `tsimm-bench-${process.pid}.jpg`);
    // A 500x375 photo-sized JPEG, like an ImageNet validation image.
    const px = Buffer.alloc(500 * 375 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24;
    await sharp(px, { raw: { width: 500, height: 375, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
    list = Array<string>(64).fill(file);
  }
  const t0 = performance.now();
  let n = 0;
  for await (const b of imageBatches(model, list, 16)) n += b.shape[0]!;
  return { imagesPerSecond: n / ((performance.now() - t0) / 1000), images: n };
}

const quantize: Command = {
  usage: 'MODEL --calib DIR -o MODEL.int8.onnx [--method minmax|percentile] [--check DIR]',
  summary: 'Static int8 quantization (QDQ: per-channel int8 weights, uint8 activations calibrated on real images).',
  options: {
    calib: { type: 'string', arg: 'DIR', help: 'calibration images (a few hundred is typical)' },
    output: { type: 'string', short: 'o', arg: 'FILE.onnx', help: 'output file' },
    method: { type: 'string', arg: 'minmax|percentile', help: 'activation range rule (default minmax)' },
    check: { type: 'string', arg: 'DIR', help: 'images disjoint from the calibration set: report top-1 agreement and max logit error vs fp32' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    ...WEIGHT_OPTIONS,
    ...DEVICE_OPTIONS,
    json: { type: 'boolean', help: 'print JSON' },
  },
  async run(p, v) {
    const output = checkOutputFile(required(v, 'output', 'where to write the int8 model'), '--output', `${p[0]}.int8.onnx`);
    const method = oneOf(v, 'method', ['minmax', 'percentile'] as const) ?? 'minmax';
    const model = createModel(oneName(p), { inputSize: sizeOpt(v) });
    await withWeights(model, v, true);
    const ranges = await calibrate(model, imageBatches(model, imagesIn(required(v, 'calib', 'calibration images decide the activation ranges'))), method);
    const bytes = int8Onnx(model, ranges);
    writeChunksAtomic(output, [bytes]);
    const checkDir = str(v, 'check');
    const check = checkDir ? await checkInt8(model, await createSession(bytes, deviceFrom(v)), imageBatches(model, imagesIn(checkDir))) : undefined;
    if (v['json']) out(json({ output, bytes: bytes.byteLength, method, check }));
    else {
      out(`${output}: ${(bytes.byteLength / 1e6).toFixed(1)} MB int8 (${method} calibration)`);
      if (check) out(`check on ${check.images} images: top-1 agreement ${(100 * check.top1Agreement).toFixed(1)}%, max logit error ${check.maxLogitError.toFixed(4)} (${(100 * check.maxLogitErrorRel).toFixed(2)}% of the largest logit)`);
    }
    return 0;
  },
};

const report: Command = {
  usage: 'RESULTS.json... -o DIR',
  summary: "Turn bench results into the seed pages' tables and plots (accuracy vs latency, FLOPs, params) as Markdown + SVG.",
  options: {
    output: { type: 'string', short: 'o', arg: 'DIR', help: 'output directory (report.md and SVG plots)' },
  },
  async run(p, v) {
    if (!p.length) throw new UsageError('expected one or more bench result files');
    const dir = checkOutputDir(required(v, 'output', 'the report directory'), '--output');
    const rows: BenchRow[] = [];
    let machine: MachineInfo | undefined;
    for (const f of p) {
      if (extname(f) !== '.json') throw new UsageError(`${f} is not a .json results file`);
      const r = readBenchResults(checkInputFile(f, 'results file'));
      if ('skipped' in r) {
        process.stderr.write(`tsimm report: skipped ${f}: ${r.skipped}\n`);
        continue;
      }
      rows.push(...r.rows);
      machine ??= r.machine;
    }
    if (!rows.length) throw new InputError(`none of the ${p.length} files holds bench results (tsimm bench writes them)`);
    mkdirSync(dir, { recursive: true });
    const r = buildReport(rows, machine!, loadSeeds());
    writeFileSync(join(dir, 'report.md'), `${r.markdown}\n`);
    for (const [name, svg] of Object.entries(r.svgs)) writeFileSync(join(dir, name), svg);
    out(`${join(dir, 'report.md')}${Object.keys(r.svgs).length ? ` and ${Object.keys(r.svgs).length} SVG plots` : ''}`);
    return 0;
  },
};

export const COMMANDS: Record<string, Command> = {
  serve,
  train,
  grad,
  bench,
  quantize,
  report,
  list,
  info,
  pull,
  predict,
  eval: evalCmd,
  preprocess: preprocessCmd,
  infer,
  export: exportCmd,
  convert,
  verify,
};
