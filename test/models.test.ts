/**
 * Registry and counts of the ResNet family. The golden numbers are the true parameter counts of
 * shared/spec/arch-resnet-family.md §6 (PaddleClas structure) and §11.4 (timm builder cross-check, which
 * reproduces timm's own benchmark CSV).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paddleModelStat } from '../src/ir/count.js';
import { createModel } from '../src/model.js';
import { listModels, resolveModel, UnknownModelError } from '../src/models/index.js';

const PADDLE_PARAMS: Record<string, number> = {
  ResNet18: 11_693_736,
  ResNet18_vd: 11_712_968,
  ResNet34: 21_801_896,
  ResNet34_vd: 21_821_128,
  ResNet50: 25_557_032,
  ResNet50_vc: 25_576_264,
  ResNet50_vd: 25_576_264,
  ResNet101: 44_549_160,
  ResNet101_vd: 44_568_392,
  ResNet152: 60_192_808,
  ResNet152_vd: 60_212_040,
  ResNet200_vd: 74_738_504,
  ResNeXt50_32x4d: 25_028_904,
  ResNeXt50_vd_32x4d: 25_048_136,
  ResNeXt50_64x4d: 45_192_488,
  ResNeXt50_vd_64x4d: 45_211_720,
  ResNeXt101_32x4d: 44_177_704,
  ResNeXt101_vd_32x4d: 44_196_936,
  ResNeXt101_64x4d: 83_455_272,
  ResNeXt101_vd_64x4d: 83_474_504,
  ResNeXt152_32x4d: 59_951_400,
  ResNeXt152_vd_32x4d: 59_970_632,
  ResNeXt152_64x4d: 114_971_944,
  ResNeXt152_vd_64x4d: 114_991_176,
  ResNeXt101_32x8d_wsl: 88_791_336,
  ResNeXt101_32x16d_wsl: 194_026_792,
  ResNeXt101_32x32d_wsl: 468_530_472,
  ResNeXt101_32x48d_wsl: 828_411_176,
  SE_ResNet18_vd: 11_802_048,
  SE_ResNet34_vd: 21_982_324,
  SE_ResNet50_vd: 28_107_256,
  SE_ResNeXt50_32x4d: 27_559_896,
  SE_ResNeXt50_vd_32x4d: 27_687_768,
  SE_ResNeXt101_32x4d: 48_955_416,
  SENet154_vd: 121_737_048,
};

/** timm params (M) and conv+FC GMACs at 224 from the spec's §11.4 cross-check. */
const TIMM: Record<string, [number, number]> = {
  resnet18: [11.69, 1.814],
  resnet18d: [11.709, 2.054],
  resnet34: [21.798, 3.664],
  resnet34d: [21.817, 3.903],
  resnet50: [25.557, 4.089],
  resnet50d: [25.576, 4.329],
  resnet101: [44.549, 7.801],
  resnet152: [60.193, 11.514],
  resnext50_32x4d: [25.029, 4.23],
  resnext50d_32x4d: [25.048, 4.47],
  resnext101_32x4d: [44.178, 7.97],
  resnext101_32x8d: [88.791, 16.414],
  resnext101_32x16d: [194.027, 36.163],
  resnext101_32x32d: [468.53, 87.107],
  resnext101_32x48d: [828.411, 153.31],
  seresnext50_32x4d: [27.56, 4.233],
  seresnext101_32x4d: [48.955, 7.975],
  legacy_senet154: [115.089, 20.688],
};

describe('ResNet family counts', () => {
  for (const [name, params] of Object.entries(PADDLE_PARAMS)) {
    it(`${name} has the PaddleClas structure's ${params} parameters`, () => {
      assert.equal(createModel(name).counts().params, params);
    });
  }
  for (const [name, [params, gmacs]] of Object.entries(TIMM)) {
    it(`${name}: ${params} M params, ${gmacs} GMACs at 224`, () => {
      const c = createModel(name).counts(224);
      assert.ok(Math.abs(c.params / 1e6 - params) < 0.0015, `params ${c.params}`);
      assert.ok(Math.abs(c.macs / 1e9 - gmacs) < 0.0015, `MACs ${c.macs}`);
    });
  }
  it('resnet200d is He et al.\'s 3-24-36-3 (64.67 M), not ResNet200_vd', () => {
    assert.ok(Math.abs(createModel('resnet200d').counts().params / 1e6 - 64.69) < 0.01);
  });
  it('reconstructs the old PaddleClas counter (Paddle 1.x model_stat) on our graph', () => {
    // spec §11.2/11.3: ResNet50 8.191 GFLOPs, ResNeXt50_32x4d 23.641 M params / 8.017 GFLOPs.
    const r50 = paddleModelStat(createModel('ResNet50').graph);
    assert.ok(Math.abs(r50.flops / 1e9 - 8.191) < 0.001);
    const x50 = paddleModelStat(createModel('ResNeXt50_32x4d').graph);
    assert.ok(Math.abs(x50.params / 1e6 - 23.641) < 0.001);
    assert.ok(Math.abs(x50.flops / 1e9 - 8.017) < 0.001);
  });
  it('Fix_ variants are evaluated at 320 and count 2.04x the FLOPs of 224', () => {
    const fix = createModel('Fix_ResNet50_vd_ssld_v2');
    assert.deepEqual(fix.inputSize, [320, 320]);
    assert.equal(fix.cfg.cropPct, 1);
    assert.ok(Math.abs(fix.counts().macs / 1e9 - 8.832) < 0.001);
  });
});

describe('registry', () => {
  it('lists with wildcards, case-insensitively, by source and family', () => {
    const x = listModels('*resnext*');
    assert.ok(x.includes('resnext50_32x4d') && x.includes('ResNeXt152_vd_64x4d') && x.includes('SE_ResNeXt50_32x4d'));
    assert.ok(x.every((n) => /resnext/i.test(n)));
    assert.deepEqual(listModels('resnet50*', { source: 'timm' }), ['resnet50', 'resnet50c', 'resnet50d']);
    assert.ok(listModels('*', { pretrained: true }).includes('resnet50d.gluon_in1k'));
  });

  it('has every PaddleClas and timm name of the ResNet family issue', () => {
    const paddle = [...Object.keys(PADDLE_PARAMS), 'ResNet34_vd_ssld', 'ResNet50_vd_ssld', 'ResNet50_vd_ssld_v2', 'ResNet50_vd_v2', 'ResNet101_vd_ssld', 'Fix_ResNet50_vd_ssld_v2', 'Fix_ResNeXt101_32x48d_wsl'];
    const timm = ['resnet50c', 'resnet101d', 'resnet152d', 'resnet200d', 'resnext101_64x4d', ...Object.keys(TIMM)];
    for (const n of [...paddle, ...timm]) assert.equal(resolveModel(n).entry.name, n);
  });

  it('resolves timm name.tag to that pretrained config', () => {
    const r = resolveModel('resnet50.tv_in1k');
    assert.equal(r.cfg.interpolation, 'bilinear');
    assert.equal(r.cfg.weights?.url, 'https://download.pytorch.org/models/resnet50-0676ba61.pth');
    assert.equal(resolveModel('resnet50d').cfg.weights?.hfHubId, 'timm/resnet50d.ra2_in1k');
  });

  it('gives PaddleClas models the OpenCV 256 → 224 pipeline and their bucket URL', () => {
    const { cfg } = resolveModel('ResNet50_vd_ssld');
    assert.equal(cfg.resizeBackend, 'cv2');
    assert.equal(Math.floor(224 / cfg.cropPct), 256);
    assert.equal(cfg.weights?.url, 'https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/ResNet50_vd_ssld_pretrained.pdparams');
  });

  it('aliases PaddleClas and timm names whose weights are 1:1, and not the others', () => {
    assert.deepEqual(resolveModel('ResNet50_vd').entry.aliases, ['resnet50d']);
    assert.deepEqual(resolveModel('resnet50d').entry.aliases, ['ResNet50_vd']);
    assert.deepEqual(resolveModel('ResNet18').entry.aliases, [], 'Paddle ResNet18 has the extra stage-1 projection');
    for (const [p, t] of [['SE_ResNeXt50_32x4d', 'seresnext50_32x4d'], ['ResNeXt101_32x8d_wsl', 'resnext101_32x8d']]) {
      assert.deepEqual(createModel(p!).parameters(), createModel(t!).parameters());
    }
  });

  it('suggests the closest names for an unknown model', () => {
    assert.throws(() => resolveModel('resnet51d'), (e: unknown) => e instanceof UnknownModelError && e.suggestions.includes('resnet50d'));
    assert.throws(() => resolveModel('SE_ResNext50_32x4'), (e: unknown) => e instanceof UnknownModelError && e.suggestions.includes('SE_ResNeXt50_32x4d'));
  });
});
