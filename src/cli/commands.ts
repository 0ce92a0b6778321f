/** The tsimm commands. Each parses its own options, prints results on stdout and returns an exit code. */
import { createModel, type Model } from '../model.js';
import { listModels, resolveModel, type KeyScheme } from '../models/index.js';
import { fetchWeights, stderrProgress } from '../weights/hub.js';
import { saveSafetensors } from '../weights/safetensors.js';
import { formatVerify, loadSeeds, summarize, verifySeeds, DEFAULT_SEEDS } from '../tasks/verify.js';
import { readNpy, writeNpy } from '../weights/npy.js';
import { InputError } from '../weights/tensor.js';
import { int, log, required, str, UsageError, type Command, type Values } from './args.js';

const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;
const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const thousands = (n: number) => n.toLocaleString('en-US');

function sizeOpt(v: Values): number | undefined {
  return int(v, 'size');
}

const SCHEMES: KeyScheme[] = ['timm', 'torchvision', 'paddle-legendary', 'paddle-modelzoo', 'paddle-wsl', 'paddle-res2net', 'paddle-resnest', 'paddle-regnet', 'paddle-efficientnet'];

function scheme(v: Values): KeyScheme | undefined {
  const k = str(v, 'keys');
  if (k !== undefined && !SCHEMES.includes(k as KeyScheme)) throw new UsageError(`--keys must be one of ${SCHEMES.join(', ')}`);
  return k as KeyScheme | undefined;
}

/** --weights FILE, else the registry's pretrained weights when `pretrained` (cache, else download). */
async function withWeights(model: Model, v: Values, pretrained: boolean): Promise<void> {
  const file = str(v, 'weights');
  if (file) await model.loadCheckpoint(file, scheme(v));
  else if (pretrained) await model.loadPretrained({ onProgress: stderrProgress() });
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
    weights: { type: 'string', arg: 'FILE', help: 'checkpoint (.safetensors, .pth, .pdparams); default: the pretrained weights' },
    keys: { type: 'string', arg: 'SCHEME', help: 'key scheme of --weights (default: detected)' },
    input: { type: 'string', short: 'i', arg: 'X.npy', help: 'float32 [N, 3, H, W] input (any H, W the model accepts)' },
    output: { type: 'string', short: 'o', arg: 'Y.npy', help: 'where to write the [N, classes] logits' },
    features: { type: 'boolean', help: 'write the pooled pre-logits features instead of the logits' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
  },
  async run(p, v) {
    const name = oneName(p);
    const input = readNpy(required(v, 'input', 'the .npy batch to run'));
    const output = required(v, 'output', 'the .npy file to write');
    if (input.shape.length !== 4) throw new InputError(`${str(v, 'input')} has shape (${input.shape.join(', ')}); infer needs a 4-D float32 NCHW batch [N, 3, H, W]`);
    const [, ch, h, w] = input.shape as [number, number, number, number];
    const model = createModel(name, { inputSize: [h, w], inChans: ch });
    await withWeights(model, v, true);
    log(`running ${model.name} on [${input.shape.join(', ')}]`);
    const session = await model.createSession({ threads: int(v, 'threads') });
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
  usage: 'NAME -o FILE.onnx [--size N] [--weights FILE] [--no-fold-bn] [--fp16] [--external] [--features]',
  summary: 'Export a model to ONNX (opset 17, dynamic batch, BatchNorm folded into convs).',
  options: {
    output: { type: 'string', short: 'o', arg: 'FILE.onnx', help: 'output file (weights over 2 GB go to FILE.onnx.data)' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    weights: { type: 'string', arg: 'FILE', help: 'checkpoint (.safetensors, .pth, .pdparams)' },
    keys: { type: 'string', arg: 'SCHEME', help: 'key scheme of --weights (default: detected)' },
    pretrained: { type: 'boolean', help: "the registry's pretrained weights (default: deterministic random weights)" },
    'num-classes': { type: 'string', arg: 'N', help: 'classifier width (default 1000)' },
    'no-fold-bn': { type: 'boolean', help: 'keep BatchNormalization nodes (debugging parity)' },
    fp16: { type: 'boolean', help: "store weights as float16 (half the size; ORT's x64 CPU EP computes in fp32)" },
    external: { type: 'boolean', help: 'always write weights to an external data file' },
    features: { type: 'boolean', help: 'also output the pooled pre-logits features' },
  },
  async run(p, v) {
    const name = oneName(p);
    const output = required(v, 'output', 'where to write the .onnx file');
    const model = createModel(name, { inputSize: sizeOpt(v), numClasses: int(v, 'num-classes') });
    await withWeights(model, v, !!v['pretrained']);
    if (!model.weights) {
      process.stderr.write(`tsimm export: no --weights or --pretrained: exporting ${model.name} with deterministic random weights\n`);
      model.initWeights();
    }
    const r = model.exportOnnx(output, {
      foldBatchNorm: !v['no-fold-bn'],
      float16: !!v['fp16'],
      external: !!v['external'],
      outputs: v['features'] ? ['logits', 'features'] : ['logits'],
    });
    out(`${output}: ${(r.bytes / 1e6).toFixed(1)} MB${r.externalBytes ? ` + ${output}.data ${(r.externalBytes / 1e6).toFixed(1)} MB` : ''} (input [N, ${model.inChans}, ${model.inputSize.join(', ')}], opset 17)`);
    return 0;
  },
};

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
    await model.loadCheckpoint(p[0]!, scheme(v));
    const tensors = new Map(model.parameters().map((q) => [q.name, { shape: q.shape, data: model.weights!.get(q.name)! }]));
    saveSafetensors(p[1]!, tensors, { format: 'pt', 'tsimm.model': model.name });
    out(`${p[1]}: ${tensors.size} tensors for ${model.name}`);
    return 0;
  },
};

export const COMMANDS: Record<string, Command> = { list, info, pull, infer, export: exportCmd, convert, verify };
