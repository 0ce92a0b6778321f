/** ImageNet-1k classes in the order every ImageNet classifier uses: index, WordNet id, names. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ImageNetClass {
  index: number;
  wnid: string;
  name: string;
}

let cached: ImageNetClass[] | undefined;

export function imagenetClasses(): ImageNetClass[] {
  if (!cached) {
    const text = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../data/imagenet1k-labels.tsv'), 'utf8');
    cached = text
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => {
        const [index, wnid, name] = line.split('\t');
        return { index: Number(index), wnid: wnid!, name: name! };
      });
  }
  return cached;
}

/** Short label: the first name of the synset ("tench, Tinca tinca" → "tench"). */
export function shortName(c: ImageNetClass): string {
  return c.name.split(',')[0]!.trim();
}
