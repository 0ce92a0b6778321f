/**
 * Downloading and caching weights.
 *
 * Hugging Face hub files use the hub's own cache layout (`HF_HUB_CACHE` → `HF_HOME/hub` →
 * `XDG_CACHE_HOME/huggingface/hub` → `~/.cache/huggingface/hub`, `models--org--name/{blobs,refs,snapshots}`),
 * so files Python timm downloaded are found here and the other way round. Direct URLs (torchvision, PaddleClas)
 * go under `TSIMM_CACHE` (default `~/.cache/tsimm`). `HF_ENDPOINT` points at a mirror; `TSIMM_OFFLINE=1` or
 * `HF_HUB_OFFLINE=1` never touches the network.
 *
 * A download goes to `<blob>.incomplete`, resumes from there with a Range request, is checked against the
 * size and sha256 the host states (the hub's ETag for LFS files, torchvision's hash prefix in the file name),
 * and only then is renamed into place: the cache never holds a partial or corrupt file under its final name.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, openSync, closeSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { WeightSource } from '../models/types.js';
import { InputError } from '../weights/tensor.js';

export interface Progress {
  file: string;
  loaded: number;
  total?: number;
}

export interface FetchOptions {
  onProgress?: (p: Progress) => void;
  /** Override the offline switch (default: TSIMM_OFFLINE / HF_HUB_OFFLINE). */
  offline?: boolean;
  /** Override the cache directories (default: from the environment). */
  hubCache?: string;
  tsimmCache?: string;
}

const env = (k: string) => process.env[k] || undefined;
const truthy = (v?: string) => !!v && !['0', 'false', 'no', 'off', ''].includes(v.toLowerCase());

export function hubCacheDir(): string {
  return env('HF_HUB_CACHE') ?? env('HUGGINGFACE_HUB_CACHE') ?? (env('HF_HOME') ? join(env('HF_HOME')!, 'hub') : join(env('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'huggingface', 'hub'));
}

export function tsimmCacheDir(): string {
  return env('TSIMM_CACHE') ?? join(env('XDG_CACHE_HOME') ?? join(homedir(), '.cache'), 'tsimm');
}

export function isOffline(): boolean {
  return truthy(env('TSIMM_OFFLINE')) || truthy(env('HF_HUB_OFFLINE'));
}

const hubEndpoint = () => (env('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '');

export function repoFolder(repo: string): string {
  return `models--${repo.replace(/\//g, '--')}`;
}

/** A file already in the hub cache (refs/main → snapshot), or undefined. */
export function cachedHubFile(repo: string, file: string, revision = 'main', cache = hubCacheDir()): string | undefined {
  const root = join(cache, repoFolder(repo));
  const refPath = join(root, 'refs', revision);
  const commit = existsSync(refPath) ? readFileSync(refPath, 'utf8').trim() : revision;
  const p = join(root, 'snapshots', commit, file);
  return existsSync(p) ? p : undefined;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

const cleanEtag = (e: string | null | undefined) => e?.replace(/^W\//, '').replace(/"/g, '') || undefined;

interface Expected {
  size?: number;
  /** Full sha256, or a hex prefix of it (torchvision file names). */
  sha256?: string;
}

/**
 * Stream `url` into `incomplete` (resuming what is there), verify it, rename it to `dest`.
 */
async function download(url: string, incomplete: string, dest: string, expected: Expected, label: string, o: FetchOptions): Promise<void> {
  mkdirSync(dirname(incomplete), { recursive: true });
  let have = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (expected.size !== undefined && have > expected.size) {
    rmSync(incomplete);
    have = 0;
  }
  const headers: Record<string, string> = { 'user-agent': 'tsimm/0.1.0' };
  const token = env('HF_TOKEN');
  if (token && url.startsWith(hubEndpoint())) headers['authorization'] = `Bearer ${token}`;
  if (have > 0) headers['range'] = `bytes=${have}-`;
  let res: Response;
  try {
    res = await fetch(url, { headers, redirect: 'follow' });
  } catch (e) {
    throw new InputError(`cannot download ${label} from ${url}: ${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message}; check the network (or use a local file with TSIMM_OFFLINE=1)`);
  }
  if (res.status === 416 && have > 0 && expected.size === have) {
    // Already complete: fall through to verification.
  } else if (!res.ok) {
    throw new InputError(`cannot download ${label}: ${url} answered HTTP ${res.status}${res.status === 404 ? ' (not found: check the model name and tag)' : ''}`);
  } else {
    if (res.status !== 206) have = 0; // the server ignored the Range: start over
    const total = res.headers.get('content-length') ? have + Number(res.headers.get('content-length')) : expected.size;
    const fd = openSync(incomplete, have > 0 ? 'a' : 'w');
    let loaded = have;
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        writeSync(fd, value);
        loaded += value.byteLength;
        o.onProgress?.({ file: label, loaded, total });
      }
    } catch (e) {
      throw new InputError(`download of ${label} was cut off after ${loaded} bytes (${(e as Error).message}); run the command again to resume`);
    } finally {
      closeSync(fd);
    }
    if (total !== undefined && loaded !== total) throw new InputError(`download of ${label} ended after ${loaded} of ${total} bytes; run the command again to resume`);
  }
  const size = statSync(incomplete).size;
  if (expected.size !== undefined && size !== expected.size) {
    rmSync(incomplete, { force: true });
    throw new InputError(`downloaded ${label} has ${size} bytes, the host said ${expected.size}; the partial file was removed, try again`);
  }
  if (expected.sha256) {
    const digest = await sha256File(incomplete);
    if (!digest.startsWith(expected.sha256.toLowerCase())) {
      rmSync(incomplete, { force: true });
      throw new InputError(`downloaded ${label} fails its checksum (sha256 ${digest.slice(0, 16)}…, expected ${expected.sha256.slice(0, 16)}…); the file was removed, try again`);
    }
  }
  renameSync(incomplete, dest);
}

/** A file of a hub repository: from the cache, else downloaded into it. Returns the snapshot path. */
export async function hubFile(repo: string, file: string, o: FetchOptions = {}): Promise<string> {
  const cache = o.hubCache ?? hubCacheDir();
  const cached = cachedHubFile(repo, file, 'main', cache);
  if (cached) return cached;
  if (o.offline ?? isOffline()) {
    throw new InputError(`${repo}/${file} is not in the cache (${cache}) and downloads are off (TSIMM_OFFLINE/HF_HUB_OFFLINE); pull it online first`);
  }
  const url = `${hubEndpoint()}/${repo}/resolve/main/${file}`;
  const root = join(cache, repoFolder(repo));
  // The hub states the file's sha256 (LFS ETag), size and commit on a HEAD request without redirects.
  let etag: string | undefined;
  let size: number | undefined;
  let commit: string | undefined;
  try {
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual', headers: env('HF_TOKEN') ? { authorization: `Bearer ${env('HF_TOKEN')}` } : {} });
    if (head.status === 404) throw new InputError(`${repo}/${file} does not exist on ${hubEndpoint()} (HTTP 404): check the model name and tag`);
    etag = cleanEtag(head.headers.get('x-linked-etag') ?? head.headers.get('etag'));
    const len = head.headers.get('x-linked-size') ?? head.headers.get('content-length');
    size = len ? Number(len) : undefined;
    commit = head.headers.get('x-repo-commit') ?? undefined;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot reach ${hubEndpoint()} for ${repo}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}; set HF_ENDPOINT for a mirror, or TSIMM_OFFLINE=1 with a local file`);
  }
  const sha = etag && /^[0-9a-f]{64}$/i.test(etag) ? etag : undefined;
  const blobName = etag ?? createHash('sha256').update(url).digest('hex');
  const blob = join(root, 'blobs', blobName);
  if (!existsSync(blob)) await download(url, `${blob}.incomplete`, blob, { size, sha256: sha }, `${repo}/${file}`, o);
  const snapshot = join(root, 'snapshots', commit ?? 'main', file);
  mkdirSync(dirname(snapshot), { recursive: true });
  rmSync(snapshot, { force: true });
  try {
    symlinkSync(relative(dirname(snapshot), blob), snapshot);
  } catch {
    writeFileSync(snapshot, readFileSync(blob)); // filesystems without symlinks
  }
  mkdirSync(join(root, 'refs'), { recursive: true });
  writeFileSync(join(root, 'refs', 'main'), commit ?? 'main');
  return snapshot;
}

/** A direct URL, cached under TSIMM_CACHE/<host>/<path>. torchvision's `name-<sha256 prefix>.pth` is verified. */
export async function urlFile(url: string, o: FetchOptions = {}): Promise<string> {
  const u = new URL(url);
  const dest = join(o.tsimmCache ?? tsimmCacheDir(), u.host.replace(/[^\w.-]/g, '_'), ...u.pathname.split('/').filter(Boolean));
  if (existsSync(dest)) return dest;
  if (o.offline ?? isOffline()) throw new InputError(`${url} is not in the cache (${dest}) and downloads are off (TSIMM_OFFLINE); pull it online first`);
  const hashPrefix = /-([a-f0-9]{8,})\.[a-z]+$/.exec(u.pathname)?.[1];
  await download(url, `${dest}.incomplete`, dest, { sha256: hashPrefix }, u.pathname.split('/').pop()!, o);
  return dest;
}

/** The local file for a registry weight source (hub safetensors preferred, else its direct URL). */
export async function fetchWeights(source: WeightSource, o: FetchOptions = {}): Promise<string> {
  if (source.hfHubId) return hubFile(source.hfHubId, 'model.safetensors', o);
  if (source.url) return urlFile(source.url, o);
  throw new InputError('this pretrained config names no weight file');
}

/** A one-line progress bar on stderr, only when it is a terminal. */
export function stderrProgress(): ((p: Progress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 100 && p.loaded !== p.total) return;
    last = now;
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const pct = p.total ? Math.floor((100 * p.loaded) / p.total) : undefined;
    const bar = pct === undefined ? '' : `[${'#'.repeat(Math.floor(pct / 4)).padEnd(25)}] ${String(pct).padStart(3)}% `;
    process.stderr.write(`\r${p.file} ${bar}${mb(p.loaded)}${p.total ? `/${mb(p.total)}` : ''} MB`);
    if (p.total && p.loaded >= p.total) process.stderr.write('\n');
  };
}
