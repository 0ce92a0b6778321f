/**
 * Weights from the hub into the page: timm's own files (`{hub}/timm/<arch>.<tag>/resolve/main/model.safetensors`
 * and `config.json`) or the registry's direct URLs (PaddleClas), kept in the Cache API under their URL.
 * A download is checked against the size and sha256 the host states (the hub's x-linked-size/x-linked-etag, else
 * Content-Length/ETag) before it is stored, so the cache never holds a partial or corrupt file; once stored, a
 * file loads with no network at all. Runs in the worker (hashing 100 MB is no work for the main thread).
 */
import type { KeyScheme, WeightSource } from '../src/models/types.js';
import { TsimmError } from './errors.js';

export const CACHE_NAME = 'tsimm-files-v1';
export const DEFAULT_HUB = 'https://huggingface.co';

export interface Progress {
  file: string;
  loaded: number;
  total?: number;
}

export interface WeightFiles {
  weights: string;
  config?: string;
  scheme: KeyScheme;
}

/** The URLs of a registry weight source: hub safetensors (timm keys) where it has them, else its direct URL. */
export function weightUrls(source: WeightSource, hubUrl = DEFAULT_HUB): WeightFiles {
  const hub = hubUrl.replace(/\/+$/, '');
  if (source.hfHubId) {
    const base = `${hub}/${source.hfHubId}/resolve/main`;
    return { weights: `${base}/model.safetensors`, config: `${base}/config.json`, scheme: 'timm' };
  }
  if (source.url) return { weights: source.url, scheme: source.keys };
  throw new TsimmError('NO_WEIGHTS', 'this pretrained config names no weight file; pass your own with { weights: File | ArrayBuffer }');
}

const fileName = (url: string) => {
  const u = new URL(url);
  const parts = u.pathname.split('/').filter(Boolean);
  const i = parts.indexOf('resolve');
  return i >= 2 ? `${parts.slice(0, i).join('/')}/${parts[parts.length - 1]}` : parts[parts.length - 1] ?? url;
};

const cleanEtag = (e: string | null) => e?.replace(/^W\//, '').replace(/"/g, '') || undefined;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function openCache(): Promise<Cache | undefined> {
  // No Cache API (an insecure origin): downloads still work, they are just not kept.
  if (typeof caches === 'undefined') return undefined;
  return caches.open(CACHE_NAME);
}

export interface FetchFileOptions {
  onProgress?: (p: Progress) => void;
  /** Never touch the network: the file must be cached. */
  offline?: boolean;
}

/** A file's bytes: from the cache, else downloaded, verified and cached. */
export async function fetchFile(url: string, o: FetchFileOptions = {}): Promise<Uint8Array> {
  const file = fileName(url);
  const cache = await openCache();
  const hit = await cache?.match(url);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    const size = Number(hit.headers.get('x-tsimm-size'));
    if (bytes.byteLength === size) {
      o.onProgress?.({ file, loaded: size, total: size });
      return bytes;
    }
    await cache!.delete(url); // cannot happen through fetchFile; a foreign entry under our name is dropped
  }
  if (o.offline) throw new TsimmError('OFFLINE', `${file} is not in the cache and the page is offline; load the model once online to cache it`);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
    throw new TsimmError(
      offline ? 'OFFLINE' : 'NETWORK',
      offline
        ? `${file} is not in the cache and the page is offline; load the model once online to cache it`
        : `cannot fetch ${url} (${(e as Error).message}): the host is unreachable or refuses cross-origin requests (CORS); pass hubUrl to use a mirror that allows this origin`,
    );
  }
  if (res.status === 404) throw new TsimmError('NOT_FOUND', `${url} does not exist (HTTP 404): check the model name and tag, or the hubUrl mirror's layout ({hubUrl}/timm/<arch>.<tag>/resolve/main/model.safetensors)`);
  if (!res.ok) throw new TsimmError('HTTP', `${url} answered HTTP ${res.status} ${res.statusText}; try again later or pass hubUrl for a mirror`);
  const sizeHeader = res.headers.get('x-linked-size') ?? (res.headers.get('content-encoding') ? null : res.headers.get('content-length'));
  const total = sizeHeader ? Number(sizeHeader) : undefined;
  const etag = cleanEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
  const sha = etag && /^[0-9a-f]{64}$/i.test(etag) ? etag.toLowerCase() : undefined;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      o.onProgress?.({ file, loaded, total });
    }
  } catch (e) {
    throw new TsimmError('TRUNCATED', `the download of ${file} broke off after ${loaded}${total ? ` of ${total}` : ''} bytes (${(e as Error).message}); nothing was cached — try again`);
  }
  if (total !== undefined && loaded !== total) {
    throw new TsimmError('TRUNCATED', `${file} arrived with ${loaded} bytes, but the host states ${total}; the download is incomplete or the mirror is damaged — nothing was cached, try again`);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  const digest = await sha256Hex(bytes);
  if (sha && digest !== sha) {
    throw new TsimmError('CHECKSUM', `${file} has sha256 ${digest.slice(0, 12)}…, but the host states ${sha.slice(0, 12)}…; the file is corrupt — nothing was cached, try again or use another mirror`);
  }
  if (cache) {
    const headers = { 'content-type': 'application/octet-stream', 'x-tsimm-size': String(loaded), 'x-tsimm-sha256': digest, 'x-tsimm-time': new Date().toISOString() };
    try {
      await cache.put(url, new Response(bytes, { headers }));
    } catch (e) {
      await cache.delete(url).catch(() => undefined);
      if ((e as Error).name === 'QuotaExceededError') {
        throw new TsimmError('QUOTA', `the browser's storage quota is full: ${file} (${(loaded / 1e6).toFixed(1)} MB) cannot be cached; free space with clearCache() or the site settings`);
      }
      throw e;
    }
  }
  return bytes;
}

/** Drop one cached file (a download that verified but did not parse as a checkpoint). */
export async function forgetFile(url: string): Promise<void> {
  if (typeof caches !== 'undefined') await (await caches.open(CACHE_NAME)).delete(url);
}

export interface CacheEntry {
  url: string;
  bytes: number;
  sha256?: string;
  cachedAt?: string;
}

/** What the cache holds: each file and the total size. */
export async function cacheInfo(): Promise<{ files: CacheEntry[]; bytes: number }> {
  const cache = await openCache();
  if (!cache) return { files: [], bytes: 0 };
  const files: CacheEntry[] = [];
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    const bytes = Number(res?.headers.get('x-tsimm-size') ?? 0);
    files.push({ url: req.url, bytes, sha256: res?.headers.get('x-tsimm-sha256') ?? undefined, cachedAt: res?.headers.get('x-tsimm-time') ?? undefined });
  }
  return { files, bytes: files.reduce((a, f) => a + f.bytes, 0) };
}

/** Drop every cached file (all of them, or those whose URL contains `match`). Returns how many went. */
export async function clearCache(match?: string): Promise<number> {
  if (typeof caches === 'undefined') return 0;
  if (!match) {
    const n = (await cacheInfo()).files.length;
    await caches.delete(CACHE_NAME);
    return n;
  }
  const cache = await caches.open(CACHE_NAME);
  let n = 0;
  for (const req of await cache.keys()) if (req.url.includes(match) && (await cache.delete(req))) n++;
  return n;
}
