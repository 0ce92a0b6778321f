/**
 * Writes Fashion-MNIST test images as PNG (sharp, 8-bit gray, 28×28) from Debian's dataset-fashion-mnist IDX files.
 *
 *   npx tsx examples/fashion-mnist/write-images.ts                 # images/: the first 2 test images of each class
 *   npx tsx examples/fashion-mnist/write-images.ts --all DIR       # DIR/<class>/NNNNN.png, all 10,000 test images,
 *                                                                  # and DIR/classes.txt for `tsimm eval --class-map`
 *
 * File names are the test-set index and the true class (`000_ankle-boot.png`). Class folders use the same slugs
 * ("t-shirt-top", "ankle-boot"): the real names contain "/" and spaces, which cannot be folder names (and a labels
 * file reads only the first word of a label), so `tsimm eval` maps the folders with `--class-map DIR/classes.txt`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { grayRow, idxDataset } from '../../src/data/datasets.js';
import { FASHION_MNIST_DIR } from '../../src/data/idx.js';

const here = dirname(import.meta.filename);
const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const data = opt('--data') ?? FASHION_MNIST_DIR;
const all = opt('--all');

const slug = (c: string) => c.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

const ds = await idxDataset(data, { split: 'test' });
const gray = ds.gray!;
const png = (row: number) => {
  const g = grayRow(gray, row);
  return sharp(Buffer.from(g.data), { raw: { width: g.width, height: g.height, channels: 1 } }).png({ compressionLevel: 9 }).toBuffer();
};

if (all) {
  for (const c of ds.classes) mkdirSync(join(all, slug(c)), { recursive: true });
  writeFileSync(join(all, 'classes.txt'), ds.classes.map(slug).join('\n') + '\n');
  for (let i = 0; i < ds.length; i++) {
    const s = ds.samples[i]!;
    writeFileSync(join(all, slug(ds.classes[s.target]!), `${String(i).padStart(5, '0')}.png`), await png(i));
  }
  console.log(`${ds.length} test images in ${all}/<class>/; class map ${join(all, 'classes.txt')}`);
} else {
  const out = join(here, 'images');
  mkdirSync(out, { recursive: true });
  const taken = new Map<number, number>();
  const picked: number[] = [];
  for (let i = 0; i < ds.length && picked.length < 2 * ds.classes.length; i++) {
    const t = ds.samples[i]!.target;
    if ((taken.get(t) ?? 0) < 2) {
      taken.set(t, (taken.get(t) ?? 0) + 1);
      picked.push(i);
    }
  }
  for (const i of picked) {
    const name = `${String(i).padStart(3, '0')}_${slug(ds.classes[ds.samples[i]!.target]!)}.png`;
    writeFileSync(join(out, name), await png(i));
  }
  console.log(`${picked.length} images in ${out}`);
}
