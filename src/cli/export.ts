/**
 * `tsimm export`: a model as ONNX (opset 17, dynamic batch, BatchNorm folded) with its preprocessing in a JSON
 * sidecar, or as a Triton model repository (config.pbtxt, labels.txt, preprocess.json, VERSION/model.onnx).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePreprocess, type PreprocessConfig } from '../data/preprocess.js';
import { createModel, type Model } from '../model.js';
import { resolveModel } from '../models/index.js';
import { type ExportOptions } from '../onnx/export.js';
import { writeChunksAtomic } from '../node/files.js';
import { checkTritonName, tritonConfig, tritonLabels } from '../tasks/triton.js';
import { int, required, str, UsageError, type Command, type Values } from './args.js';
import { runPreprocess, WEIGHT_OPTIONS } from './model-args.js';
import { checkOutputDir, checkOutputFile } from './paths.js';
import { json, oneName, out, sizeOpt, weightsRun, withWeights } from './options.js';

export const exportCmd: Command = {
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
    const run = weightsRun(name, v);
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
