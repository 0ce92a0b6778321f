/** `tsimm list`, `tsimm info` and `tsimm pull`: the model zoo's names, one model's config and counts, its weights downloaded. */
import { createModel } from '../model.js';
import { listModels, resolveModel } from '../models/index.js';
import { fetchWeights, stderrProgress } from '../node/hub.js';
import { InputError } from '../weights/tensor.js';
import { int, str, UsageError, type Command } from './args.js';
import { json, oneName, out, sizeOpt } from './options.js';

const thousands = (n: number) => n.toLocaleString('en-US');

export const list: Command = {
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
      process.stderr.write(`tsimm list: error: no model matches "${p[0] ?? '*'}"${source || str(v, 'family') ? ' with these filters' : ''}; try a wildcard, like '*${(p[0] ?? '').replace(/\*/g, '')}*'\n`);
      return 1;
    }
    out(v['json'] ? json(names) : names.join('\n'));
    return names.length ? 0 : 1;
  },
};

export const info: Command = {
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

export const pull: Command = {
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
