/**
 * Decoding unusual images exactly as the references do: PIL's Image.open(f).convert('RGB') for timm weights
 * (exact), cv2.imread(f, IMREAD_COLOR) for PaddleClas weights (within 1 LSB). The images and the references'
 * decodes are written at test time by test/tools/decode_references.py with Debian's python3-pil/python3-opencv.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { decodeImage, normalize, preprocessImage, resolvePreprocess, transformImage } from '../src/data/preprocess.js';
import { resolveModel } from '../src/models/index.js';
import { parseNpy } from '../src/weights/npy.js';
import { REPO } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const PYTHON = process.env['TSIMM_TEST_PYTHON'] ?? '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import PIL, cv2, numpy'], { encoding: 'utf8' });
const NO_REFS: string | false = probe.status === 0 ? false : `${PYTHON} with PIL, cv2 and numpy is not installed (apt-get install python3-pil python3-opencv); .ci/run installs them`;

const dir = mkdtempSync(join(tmpdir(), 'tsimm-decode-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Modes each reference must cover (the list). */
const EXPECTED = ['cmyk', 'rgb16', 'gray16', 'palette-trns', 'palette-trns-gif', 'la', 'rgba', 'bilevel', 'bilevel-tiff', 'int32', 'float32'];

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describeOrSkip('decoding unusual images like PIL (exact) and OpenCV (±1)', NO_REFS, () => {
  let index: Record<string, { file: string; pilMode: string; cv2: boolean }>;
  before(() => {
    const r = spawnSync(PYTHON, [join(REPO, 'test/tools/decode_references.py'), dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  });

  it('covers CMYK, 16-bit, palette + transparency, LA, RGBA, 1-bit, I and F', () => {
    assert.deepEqual(Object.keys(index), EXPECTED);
    assert.deepEqual(
      ['cmyk', 'gray16', 'palette-trns', 'la', 'bilevel', 'int32', 'float32'].map((n) => index[n]!.pilMode),
      ['CMYK', 'I', 'P', 'LA', '1', 'I', 'F'],
    );
  });

  for (const name of EXPECTED) {
    it(`${name}: PIL exactly, OpenCV within 1`, async () => {
      const e = index[name]!;
      const file = join(dir, e.file);
      const pil = parseNpy(new Uint8Array(readFileSync(join(dir, `${name}.pil.npy`))));
      const ours = await decodeImage(file, { exifRotate: false, maxPixels: 1e8, backend: 'pil' });
      assert.deepEqual([ours.height, ours.width, 3], pil.shape);
      assert.equal(maxDiff(ours.data, pil.data), 0, 'PIL');
      if (e.cv2) {
        const cv = parseNpy(new Uint8Array(readFileSync(join(dir, `${name}.cv2.npy`))));
        const o2 = await decodeImage(file, { exifRotate: true, maxPixels: 1e8, backend: 'cv2' });
        assert.ok(maxDiff(o2.data, cv.data) <= 1, 'OpenCV');
      }
    });
  }

  it('each model pipeline decodes as its own reference (timm: PIL, PaddleClas: OpenCV)', async () => {
    const file = join(dir, 'cmyk.jpg');
    for (const [model, ref] of [['resnet50d', 'pil'], ['ResNet50_vd', 'cv2']] as const) {
      const cfg = resolvePreprocess(resolveModel(model).cfg, { size: 16 });
      assert.equal(cfg.backend, ref);
      const r = parseNpy(new Uint8Array(readFileSync(join(dir, `cmyk.${ref}.npy`))));
      const img = { width: r.shape[1]!, height: r.shape[0]!, data: Uint8Array.from(r.data) };
      assert.deepEqual(await preprocessImage(file, cfg), normalize(transformImage(img, cfg), cfg), model);
    }
  });
});
