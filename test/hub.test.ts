/** Downloads and the cache, against a real HTTP server on 127.0.0.1 (nothing leaves the machine). */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createModel } from '../src/model.js';
import { hubFile, urlFile } from '../src/node/hub.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { InputError } from '../src/weights/tensor.js';
import { runCli } from './helpers/cli.js';
import { sha256, startServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let root: string;
const body = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) & 0xff);

before(async () => {
  server = await startServer();
});
const roots: string[] = [];
after(async () => {
  await server.close();
  // Every test's directory, not only the last one's.
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tsimm-hub-'));
  roots.push(root);
  process.env['HF_ENDPOINT'] = server.url;
  process.env['HF_HUB_CACHE'] = join(root, 'hub');
  process.env['TSIMM_CACHE'] = join(root, 'tsimm');
  delete process.env['TSIMM_OFFLINE'];
  delete process.env['HF_HUB_OFFLINE'];
  server.requests.length = 0;
  server.files.clear();
});

const blobs = (repo: string) => readdirSync(join(root, 'hub', `models--${repo.replace('/', '--')}`, 'blobs'));

describe('hub downloads', () => {
  it('downloads into the Hugging Face cache layout and reuses it without a request', async () => {
    server.files.set('/timm/demo.tag/resolve/main/model.safetensors', { body });
    const path = await hubFile('timm/demo.tag', 'model.safetensors');
    const repoDir = join(root, 'hub', 'models--timm--demo.tag');
    assert.equal(path, join(repoDir, 'snapshots', 'c0ffee0000000000000000000000000000000000', 'model.safetensors'));
    assert.ok(lstatSync(path).isSymbolicLink());
    assert.equal(readlinkSync(path), join('..', '..', 'blobs', sha256(body)));
    assert.equal(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), 'c0ffee0000000000000000000000000000000000');
    assert.deepEqual(new Uint8Array(readFileSync(path)), body);
    const before = server.requests.length;
    assert.equal(await hubFile('timm/demo.tag', 'model.safetensors'), path);
    assert.equal(server.requests.length, before, 'served from the cache');
  });

  it('resumes a download that was cut off, with a Range request, leaving no corrupt file', async () => {
    server.files.set('/timm/cut/resolve/main/model.safetensors', { body, cutAfter: 100_000, cutTimes: 1 });
    const progress: number[] = [];
    await assert.rejects(hubFile('timm/cut', 'model.safetensors', { onProgress: (p) => progress.push(p.loaded) }), (e: unknown) => e instanceof InputError && /again to resume/.test(e.message));
    assert.deepEqual(blobs('timm/cut'), [`${sha256(body)}.incomplete`], 'only the partial file, under its .incomplete name');
    assert.ok(!existsSync(join(root, 'hub', 'models--timm--cut', 'snapshots')));
    const path = await hubFile('timm/cut', 'model.safetensors');
    assert.equal(server.requests.at(-1)!.range, 'bytes=100000-');
    assert.deepEqual(new Uint8Array(readFileSync(path)), body);
    assert.deepEqual(blobs('timm/cut'), [sha256(body)]);
    assert.ok(progress.length > 0);
  });

  it('rejects a file whose sha256 is not the announced one, keeping nothing', async () => {
    server.files.set('/timm/bad/resolve/main/model.safetensors', { body, etag: 'a'.repeat(64) });
    await assert.rejects(hubFile('timm/bad', 'model.safetensors'), /fails its checksum/);
    assert.deepEqual(blobs('timm/bad'), []);
  });

  it('names a 404 and an unreachable host', async () => {
    await assert.rejects(hubFile('timm/missing', 'model.safetensors'), /HTTP 404/);
    process.env['HF_ENDPOINT'] = 'http://127.0.0.1:9';
    await assert.rejects(hubFile('timm/any', 'model.safetensors'), /cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('offline: uses what the cache has (as Python timm left it), refuses the rest', async () => {
    process.env['HF_HUB_OFFLINE'] = '1';
    await assert.rejects(hubFile('timm/absent', 'model.safetensors'), /not in the cache.*downloads are off/);
    const snap = join(root, 'hub', 'models--timm--cached', 'snapshots', 'abc123');
    mkdirSync(snap, { recursive: true });
    writeFileSync(join(snap, 'model.safetensors'), 'x');
    mkdirSync(join(root, 'hub', 'models--timm--cached', 'refs'), { recursive: true });
    writeFileSync(join(root, 'hub', 'models--timm--cached', 'refs', 'main'), 'abc123');
    assert.equal(await hubFile('timm/cached', 'model.safetensors'), join(snap, 'model.safetensors'));
    assert.equal(server.requests.length, 0);
  });

  it("checks a direct URL against the sha256 prefix in its name (torchvision's convention)", async () => {
    const prefix = sha256(body).slice(0, 8);
    server.files.set(`/models/net-${prefix}.pth`, { body });
    server.files.set('/models/net-deadbeef.pth', { body });
    const ok = await urlFile(`${server.url}/models/net-${prefix}.pth`);
    assert.ok(ok.startsWith(join(root, 'tsimm', '127.0.0.1_')));
    await assert.rejects(urlFile(`${server.url}/models/net-deadbeef.pth`), /fails its checksum/);
    assert.ok(!existsSync(join(ok, '..', 'net-deadbeef.pth')));
  });
});

describe('pretrained models end to end', () => {
  it('createModel(name, { pretrained: true }) and the CLI (pull, infer) use the hub cache', async () => {
    const ref = createModel('resnet18').initWeights(4);
    const file = join(root, 'r18.safetensors');
    saveSafetensors(file, ref.stateDict());
    server.files.set('/timm/resnet18.a1_in1k/resolve/main/model.safetensors', { body: new Uint8Array(readFileSync(file)) });
    const m = await createModel('resnet18', { pretrained: true });
    assert.deepEqual(m.weights!.get('layer3.0.conv1.weight'), ref.weights!.get('layer3.0.conv1.weight'));

    const env = { ...process.env, HF_ENDPOINT: server.url, HF_HUB_CACHE: join(root, 'hub') };
    const cli = (...args: string[]) => runCli(root, args, env);
    const pull = cli('pull', 'resnet18');
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout.trim(), /models--timm--resnet18\.a1_in1k\/snapshots\/.*\/model\.safetensors$/);
    const { writeNpy } = await import('../src/node/npy.js');
    writeNpy(join(root, 'x.npy'), { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32).fill(0.1) });
    const offline = cli('infer', 'resnet18', '--input', 'x.npy', '--output', 'y.npy');
    assert.equal(offline.code, 0, offline.stderr);
    const missing = runCli(root, ['infer', 'resnet34', '--input', 'x.npy', '--output', 'z.npy'], { ...env, TSIMM_OFFLINE: '1' });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not in the cache .* downloads are off/);
    assert.ok(!existsSync(join(root, 'z.npy')));
  });
});
