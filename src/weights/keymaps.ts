/**
 * Checkpoint key maps into our (timm) names: one small, explicit map per source. timm and torchvision keys are
 * ours already; PaddleClas has a scheme per model file family (spec: arch-resnet-family.md §8,
 * arch-resnest-regnet-effnet.md §2.8, §3.4, §4.7). Paddle Linear weights are [in, out]: transposed here, and
 * reshaped to 1×1 convs where timm uses convs (SE). Every result is then shape-checked against the model.
 */
import type { Graph } from '../ir/graph.js';
import type { KeyScheme } from '../models/types.js';
import { InputError, type HostTensor } from './tensor.js';

const BN_SUFFIX: Record<string, string> = { weight: 'weight', bias: 'bias', _mean: 'running_mean', _variance: 'running_var' };

/** Keys Paddle stores that are not tensors of the model. */
const PADDLE_EXTRA = /^StructuredToParameterName@@$|num_batches_tracked$/;

function transpose2d(t: HostTensor): HostTensor {
  const [rows, cols] = t.shape as [number, number];
  const out = new Float32Array(t.data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]!;
  return { shape: [cols, rows], data: out };
}

/** A Paddle Linear [in, out] as our layer: [out, in] for a Gemm, [out, in, 1, 1] where timm has a 1×1 conv. */
function linear(t: HostTensor, ours: string, graph: Graph): HostTensor {
  if (t.shape.length !== 2) return t;
  const tt = transpose2d(t);
  const want = graph.params.get(ours)?.shape;
  return want?.length === 4 ? { shape: [...tt.shape, 1, 1], data: tt.data } : tt;
}

/** Residual blocks of our graph in order, as [stage path, block index] (e.g. ['layer2', 3]). */
function blockList(graph: Graph, re: RegExp): string[] {
  const seen: string[] = [];
  for (const name of graph.params.keys()) {
    const m = re.exec(name);
    if (m && !seen.includes(m[1]!)) seen.push(m[1]!);
  }
  return seen;
}

/** The projection of a block: plain (`downsample.0/1`) or avg-down (`downsample.1/2`), whichever the model has. */
function projection(graph: Graph, block: string): [string, string] {
  return graph.params.get(`${block}.downsample.0.weight`)?.shape.length === 4 ? [`${block}.downsample.0`, `${block}.downsample.1`] : [`${block}.downsample.1`, `${block}.downsample.2`];
}

/** Deep stems are conv1.0/conv1.1, conv1.3/conv1.4, conv1.6/bn1; the 7×7 stem conv1/bn1. */
function stemUnit(graph: Graph, k: number): [string, string] {
  if (!graph.params.has('conv1.0.weight')) return ['conv1', 'bn1'];
  return ([['conv1.0', 'conv1.1'], ['conv1.3', 'conv1.4'], ['conv1.6', 'bn1']] as [string, string][])[k]!;
}

type Rule = [RegExp, (m: RegExpExecArray, leaf: string) => string | undefined];

/**
 * Map `key` to ours. A conv+BN unit in Paddle is `<unit>.<conv wrapper>.weight` and `<unit>.<bn wrapper>.<stat>`;
 * rules receive the unit's regex match and the leaf ('weight' for the conv, or a BN stat), and give our key.
 */
function unitKey(conv: string, bn: string, isConv: boolean, stat: string): string {
  return isConv ? `${conv}.weight` : `${bn}.${BN_SUFFIX[stat]}`;
}

function resnetRules(graph: Graph, scheme: KeyScheme): Rule[] {
  const blocks = blockList(graph, /^(layer\d+\.\d+)\./);
  const block = (s: string, i: string) => `layer${Number(s) + 1}.${i}`;
  const cb = '(?:\\.(_?conv)\\.weight|\\.(_?bn|_batch_norm)\\.(weight|bias|_mean|_variance))$';
  const unit = (m: RegExpExecArray, at: number, conv: string, bn: string) => unitKey(conv, bn, !!m[at], m[at + 2]!);
  switch (scheme) {
    case 'paddle-legendary':
      return [
        [new RegExp(`^stem\\.(\\d)${cb}`), (m) => unit(m, 2, ...stemUnit(graph, Number(m[1])))],
        [
          new RegExp(`^blocks\\.(\\d+)\\.conv(\\d)${cb}`),
          (m) => {
            const b = blocks[Number(m[1])];
            return b && unit(m, 3, `${b}.conv${Number(m[2]) + 1}`, `${b}.bn${Number(m[2]) + 1}`);
          },
        ],
        [
          new RegExp(`^blocks\\.(\\d+)\\.short${cb}`),
          (m) => {
            const b = blocks[Number(m[1])];
            return b && unit(m, 2, ...projection(graph, b));
          },
        ],
        [/^fc\.(weight|bias)$/, (m) => `fc.${m[1]}`],
      ];
    case 'paddle-modelzoo':
    case 'paddle-res2net':
      return [
        [new RegExp(`^conv1_(\\d)${cb}`), (m) => unit(m, 2, ...stemUnit(graph, Number(m[1]) - 1))],
        [new RegExp(`^conv1?${cb}`), (m) => unit(m, 1, 'conv1', 'bn1')],
        [new RegExp(`^bb_(\\d+)_(\\d+)\\.conv(\\d)${cb}`), (m) => unit(m, 4, `${block(m[1]!, m[2]!)}.conv${Number(m[3]) + 1}`, `${block(m[1]!, m[2]!)}.bn${Number(m[3]) + 1}`)],
        [new RegExp(`^bb_(\\d+)_(\\d+)\\.res\\w+_branch2b_(\\d+)${cb}`), (m) => unit(m, 4, `${block(m[1]!, m[2]!)}.convs.${Number(m[3]) - 1}`, `${block(m[1]!, m[2]!)}.bns.${Number(m[3]) - 1}`)],
        [new RegExp(`^bb_(\\d+)_(\\d+)\\.short${cb}`), (m) => unit(m, 3, ...projection(graph, block(m[1]!, m[2]!)))],
        [/^bb_(\d+)_(\d+)\.scale\.(squeeze|excitation)\.(weight|bias)$/, (m) => `${block(m[1]!, m[2]!)}.se.${m[3] === 'squeeze' ? 'fc1' : 'fc2'}.${m[4]}`],
        [/^out\.(weight|bias)$/, (m) => `fc.${m[1]}`],
      ];
    case 'paddle-wsl':
      return [
        [new RegExp(`^_conv_stem${cb}`), (m) => unit(m, 1, 'conv1', 'bn1')],
        [new RegExp(`^_conv(\\d)_(\\d+)\\._conv(\\d)${cb}`), (m) => unit(m, 4, `layer${m[1]}.${m[2]}.conv${Number(m[3]) + 1}`, `layer${m[1]}.${m[2]}.bn${Number(m[3]) + 1}`)],
        [new RegExp(`^_conv(\\d)_0\\._short\\._conv${cb}`), (m) => unit(m, 2, `layer${m[1]}.0.downsample.0`, `layer${m[1]}.0.downsample.1`)],
        [/^_out\.(weight|bias)$/, (m) => `fc.${m[1]}`],
      ];
    default:
      return [];
  }
}

function resnestRules(): Rule[] {
  const cb = '(?:\\._conv\\.weight|\\._batch_norm\\.(weight|bias|_mean|_variance))$';
  const u = (m: RegExpExecArray, at: number, conv: string, bn: string) => unitKey(conv, bn, m[at] === undefined, m[at]!);
  const P = '^layer(\\d)\\.layer\\d_bottleneck_(\\d+)';
  const b = (m: RegExpExecArray) => `layer${m[1]}.${m[2]}`;
  return [
    [new RegExp(`^stem\\.conv(\\d)${cb}`), (m) => u(m, 2, ...(([['conv1.0', 'conv1.1'], ['conv1.3', 'conv1.4'], ['conv1.6', 'bn1']] as [string, string][])[Number(m[1]) - 1]!))],
    [new RegExp(`${P}\\.conv1${cb}`), (m) => u(m, 3, `${b(m)}.conv1`, `${b(m)}.bn1`)],
    [new RegExp(`${P}\\.conv2\\.conv1${cb}`), (m) => u(m, 3, `${b(m)}.conv2.conv`, `${b(m)}.conv2.bn0`)],
    [new RegExp(`${P}\\.conv2\\.conv2${cb}`), (m) => u(m, 3, `${b(m)}.conv2.fc1`, `${b(m)}.conv2.bn1`)],
    [new RegExp(`${P}\\.conv2\\.conv3\\.(weight|bias)$`), (m) => `${b(m)}.conv2.fc2.${m[3]}`],
    [new RegExp(`${P}\\.conv3${cb}`), (m) => u(m, 3, `${b(m)}.conv3`, `${b(m)}.bn3`)],
    [new RegExp(`${P}\\.conv4\\.weight$`), (m) => `${b(m)}.downsample.1.weight`],
    [new RegExp(`${P}\\._batch_norm\\.(weight|bias|_mean|_variance)$`), (m) => `${b(m)}.downsample.2.${BN_SUFFIX[m[3]!]}`],
    [/^out\.(weight|bias)$/, (m) => `fc.${m[1]}`],
  ];
}

function regnetRules(): Rule[] {
  const cb = '(?:\\._conv\\.weight|\\._batch_norm\\.(weight|bias|_mean|_variance))$';
  const u = (m: RegExpExecArray, at: number, path: string) => unitKey(`${path}.conv`, `${path}.bn`, m[at] === undefined, m[at]!);
  return [
    [new RegExp(`^conv${cb}`), (m) => u(m, 1, 'stem')],
    [new RegExp(`^s(\\d)_b(\\d+)\\.conv(\\d)${cb}`), (m) => u(m, 4, `s${m[1]}.b${m[2]}.conv${Number(m[3]) + 1}`)],
    [new RegExp(`^s(\\d)_b(\\d+)\\.short${cb}`), (m) => u(m, 3, `s${m[1]}.b${m[2]}.downsample`)],
    [/^out\.(weight|bias)$/, (m) => `head.fc.${m[1]}`],
  ];
}

function efficientnetRules(graph: Graph): Rule[] {
  const blocks = blockList(graph, /^(blocks\.\d+\.\d+)\./);
  const cb = '(?:(?:\\._conv)+\\.weight|\\._conv\\._bn\\.(weight|bias|_mean|_variance))$';
  const u = (m: RegExpExecArray, at: number, conv: string, bn: string) => unitKey(conv, bn, m[at] === undefined, m[at]!);
  const B = '^_ef\\.(?:_blocks|block)\\.(\\d+)\\.\\.';
  const blk = (m: RegExpExecArray) => blocks[Number(m[1])];
  const mb = (b: string) => graph.params.has(`${b}.conv_pwl.weight`);
  return [
    [new RegExp(`^_ef\\._conv_stem${cb}`), (m) => u(m, 1, 'conv_stem', 'bn1')],
    [new RegExp(`${B}_ecn${cb}`), (m) => (blk(m) ? u(m, 2, `${blk(m)}.conv_pw`, `${blk(m)}.bn1`) : undefined)],
    [new RegExp(`${B}_dcn${cb}`), (m) => (blk(m) ? u(m, 2, `${blk(m)}.conv_dw`, `${blk(m)}.${mb(blk(m)!) ? 'bn2' : 'bn1'}`) : undefined)],
    [new RegExp(`${B}_se\\._conv([12])\\._conv\\.(weight|bias)$`), (m) => blk(m) && `${blk(m)}.se.${m[2] === '1' ? 'conv_reduce' : 'conv_expand'}.${m[3]}`],
    [
      new RegExp(`${B}_pcn${cb}`),
      (m) => {
        const b = blk(m);
        if (!b) return undefined;
        return mb(b) ? u(m, 2, `${b}.conv_pwl`, `${b}.bn3`) : u(m, 2, `${b}.conv_pw`, `${b}.bn2`);
      },
    ],
    [/^_conv(?:\._conv)*\.weight$/, () => 'conv_head.weight'],
    [/^_conv\._bn\.(weight|bias|_mean|_variance)$/, (m) => `bn2.${BN_SUFFIX[m[1]!]}`],
    [/^_fc\.(weight|bias)$/, (m) => `classifier.${m[1]}`],
  ];
}

/** PaddleClas MobileNetV3: flat `blocks.{i}` (expand/bottleneck/linear conv units, mid_se), last_second_conv, last_conv, fc. */
function mobilenetv3Rules(graph: Graph): Rule[] {
  const blocks = blockList(graph, /^(blocks\.\d+\.\d+)\.conv_pw\./);
  const head = [...graph.params.keys()].find((k) => /^blocks\.\d+\.0\.conv\.weight$/.test(k))?.slice(0, -'.conv.weight'.length);
  const cb = '\\.(?:conv\\.weight|bn\\.(weight|bias|_mean|_variance))$';
  const u = (m: RegExpExecArray, at: number, conv: string, bn: string) => unitKey(conv, bn, m[at] === undefined, m[at]!);
  const UNITS: Record<string, [string, string]> = { expand_conv: ['conv_pw', 'bn1'], bottleneck_conv: ['conv_dw', 'bn2'], linear_conv: ['conv_pwl', 'bn3'] };
  return [
    [new RegExp(`^conv${cb}`), (m) => u(m, 1, 'conv_stem', 'bn1')],
    [new RegExp(`^blocks\\.(\\d+)\\.(expand_conv|bottleneck_conv|linear_conv)${cb}`), (m) => {
      const b = blocks[Number(m[1])];
      const [conv, bn] = UNITS[m[2]!]!;
      return b && u(m, 3, `${b}.${conv}`, `${b}.${bn}`);
    }],
    [/^blocks\.(\d+)\.mid_se\.conv([12])\.(weight|bias)$/, (m) => blocks[Number(m[1])] && `${blocks[Number(m[1])]}.se.${m[2] === '1' ? 'conv_reduce' : 'conv_expand'}.${m[3]}`],
    [new RegExp(`^last_second_conv${cb}`), (m) => head && u(m, 1, `${head}.conv`, `${head}.bn1`)],
    [/^last_conv\.weight$/, () => 'conv_head.weight'],
    [/^fc\.(weight|bias)$/, (m) => `classifier.${m[1]}`],
  ];
}

/** PaddleClas ViT/DeiT (vision_transformer.py, distilled_vision_transformer.py): timm's names, Linear [in, out]. */
function vitRules(graph: Graph): Rule[] {
  return [[/^(.+)$/, (m) => (graph.params.has(m[1]!) ? m[1] : undefined)]];
}

/** PaddleClas ConvNeXt (convnext.py): the original FB layout, renamed as timm's checkpoint filter does. */
function convnextRules(): Rule[] {
  return [
    [/^downsample_layers\.0\.(\d)\.(weight|bias)$/, (m) => `stem.${m[1]}.${m[2]}`],
    [/^downsample_layers\.(\d)\.(\d)\.(weight|bias)$/, (m) => `stages.${m[1]}.downsample.${m[2]}.${m[3]}`],
    [/^stages\.(\d)\.(\d+)\.dwconv\.(weight|bias)$/, (m) => `stages.${m[1]}.blocks.${m[2]}.conv_dw.${m[3]}`],
    [/^stages\.(\d)\.(\d+)\.norm\.(weight|bias)$/, (m) => `stages.${m[1]}.blocks.${m[2]}.norm.${m[3]}`],
    [/^stages\.(\d)\.(\d+)\.pwconv(\d)\.(weight|bias)$/, (m) => `stages.${m[1]}.blocks.${m[2]}.mlp.fc${m[3]}.${m[4]}`],
    [/^stages\.(\d)\.(\d+)\.gamma$/, (m) => `stages.${m[1]}.blocks.${m[2]}.gamma`],
    [/^norm\.(weight|bias)$/, (m) => `head.norm.${m[1]}`],
    [/^head\.(weight|bias)$/, (m) => `head.fc.${m[1]}`],
  ];
}

function rulesFor(scheme: KeyScheme, graph: Graph): Rule[] {
  switch (scheme) {
    case 'paddle-vit':
      return vitRules(graph);
    case 'paddle-convnext':
      return convnextRules();
    case 'paddle-resnest':
      return resnestRules();
    case 'paddle-regnet':
      return regnetRules();
    case 'paddle-efficientnet':
      return efficientnetRules(graph);
    case 'paddle-mobilenetv3':
      return mobilenetv3Rules(graph);
    default:
      return resnetRules(graph, scheme);
  }
}

export interface MappedKeys {
  tensors: Map<string, HostTensor>;
  /** Source keys no rule maps (reported as unexpected). */
  unmapped: string[];
}

/** Rename a checkpoint's tensors to our keys. timm/torchvision: identity. */
export function mapKeys(tensors: Map<string, HostTensor>, scheme: KeyScheme, graph: Graph): MappedKeys {
  if (scheme === 'timm' || scheme === 'torchvision') return { tensors, unmapped: [] };
  const rules = rulesFor(scheme, graph);
  const out = new Map<string, HostTensor>();
  const unmapped: string[] = [];
  for (const [key, t] of tensors) {
    if (PADDLE_EXTRA.test(key)) continue;
    let ours: string | undefined;
    for (const [re, f] of rules) {
      const m = re.exec(key);
      if (m) {
        ours = f(m, key) || undefined;
        break;
      }
    }
    if (!ours) {
      unmapped.push(key);
      continue;
    }
    if (out.has(ours)) throw new InputError(`two checkpoint tensors map to ${ours} (the second is ${key}); is this the right --model?`);
    out.set(ours, linear(t, ours, graph));
  }
  return { tensors: out, unmapped };
}

/** Guess a checkpoint's key scheme from its keys (used when a file comes without a registry entry's hint). */
export function detectScheme(keys: string[]): KeyScheme {
  const has = (re: RegExp) => keys.some((k) => re.test(k));
  if (has(/^_ef\./)) return 'paddle-efficientnet';
  if (has(/^blocks\.\d+\.expand_conv\.conv\.weight$/)) return 'paddle-mobilenetv3';
  if (has(/^downsample_layers\.0\.0\.weight$/)) return 'paddle-convnext';
  if (has(/_bottleneck_\d+\./)) return 'paddle-resnest';
  if (has(/^s\d_b\d+\./)) return 'paddle-regnet';
  if (has(/^_conv_stem\./)) return 'paddle-wsl';
  if (has(/^blocks\.\d+\.conv\d\.conv\.weight$/)) return 'paddle-legendary';
  if (has(/_branch2b_\d+\./)) return 'paddle-res2net';
  if (has(/^bb_\d+_\d+\./)) return 'paddle-modelzoo';
  return 'timm';
}
