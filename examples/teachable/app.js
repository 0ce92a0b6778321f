/**
 * tsimm studio: a teachable machine on the public tsimm/web API only. The page keeps the images (Files as given,
 * webcam frames as ImageBitmaps); tsimm/web's worker builds the model, preprocesses (timm's train transform),
 * trains (Node's engine on onnxruntime-web), classifies and saves. No framework, no bundler: plain DOM.
 */
import { createModel, describeModel, listModels } from 'tsimm/web';

const $ = (sel, root = document) => root.querySelector(sel);
/** Seeds of the page's randomness (weights, shuffling, augmentation): the same images train the same way. */
const SEED = 0;
/** Webcam frames are kept at this short side (memory: a 640×480 frame is 1.2 MB; the models' inputs are ≤ 224). */
const FRAME_SHORT_SIDE = 256;
/** Light augmentation for a few images per class: timm's train transform, with a gentler crop than ImageNet's. */
const AUGMENT = { scale: [0.5, 1], hflip: 0.5, colorJitter: 0.2 };

const state = {
  hubUrl: undefined,
  classes: [],
  nextClass: 1,
  stream: undefined,
  model: undefined,
  busy: false,
  live: false,
  history: [],
  error: undefined,
};
// The page's state, for the console (and the tests, which read what the page holds).
window.studio = state;

function setStatus(text, kind = 'info', phase) {
  const s = $('#status');
  s.textContent = text;
  s.className = kind === 'error' ? 'error' : 'muted';
  if (phase) s.dataset.state = phase;
  if (kind === 'error') state.error = text;
}

const message = (e) => (e && e.message) || String(e);

// ---- 1. Model -------------------------------------------------------------------------------------------------

function describe() {
  const name = $('#model').value.trim();
  const info = $('#model-info');
  try {
    const size = Number($('#size').value) || undefined;
    const d = describeModel(name, { inputSize: size });
    const pretrained = $('#weights').querySelector('[value=pretrained]');
    pretrained.disabled = !d.weights;
    if (!d.weights) $('#weights').value = 'random';
    const from = d.weights ? (d.weights.hfHubId ? `${state.hubUrl ?? 'https://huggingface.co'}/${d.weights.hfHubId}` : d.weights.url) : 'none published';
    info.textContent = `${d.name}.${d.tag} (${d.source}): ${(d.params / 1e6).toFixed(2)} M params, ${d.macs >= 1e8 ? `${(d.macs / 1e9).toFixed(2)} GMACs` : `${(d.macs / 1e6).toFixed(1)} MMACs`} at ${d.inputSize.join('×')}; pretrained weights: ${from}`;
    info.className = 'muted';
  } catch (e) {
    info.textContent = message(e);
    info.className = 'error';
  }
}

// ---- 2. Classes and images ------------------------------------------------------------------------------------

function thumbnail(source) {
  const c = document.createElement('canvas');
  c.width = c.height = 40;
  const ctx = c.getContext('2d');
  const s = Math.max(40 / source.width, 40 / source.height);
  ctx.drawImage(source, (40 - source.width * s) / 2, (40 - source.height * s) / 2, source.width * s, source.height * s);
  return c;
}

function addImage(cls, source, thumbSource) {
  cls.images.push(source);
  cls.card.querySelector('.thumbs').append(thumbnail(thumbSource));
  const n = cls.images.length;
  const count = cls.card.querySelector('.count');
  count.textContent = `${n} image${n === 1 ? '' : 's'}`;
  count.dataset.count = String(n);
}

async function addFiles(cls, files) {
  for (const file of files) {
    try {
      const bitmap = await createImageBitmap(file);
      addImage(cls, file, bitmap);
      bitmap.close();
    } catch {
      setStatus(`${file.name} is not an image this browser can read; skipped`, 'error');
    }
  }
}

async function captureFrame(cls) {
  const video = $('#video');
  if (!state.stream || video.readyState < 2) return;
  const s = FRAME_SHORT_SIDE / Math.min(video.videoWidth, video.videoHeight);
  const frame = await createImageBitmap(video, s < 1 ? { resizeWidth: Math.round(video.videoWidth * s), resizeHeight: Math.round(video.videoHeight * s), resizeQuality: 'high' } : {});
  addImage(cls, frame, frame);
}

function addClass(name) {
  const cls = { id: state.nextClass++, images: [], card: document.createElement('div') };
  const card = cls.card;
  card.className = 'class';
  card.dataset.cls = String(cls.id);
  card.innerHTML = `<div class="row"><input class="name" aria-label="class name"><span class="count muted" data-count="0">0 images</span>
      <button class="remove" title="remove this class">✕</button></div>
    <div class="drop">Drop images here, or <label>pick <input type="file" class="files" accept="image/*" multiple></label></div>
    <button class="snap" ${state.stream ? '' : 'disabled'}>Hold to record from the webcam</button>
    <div class="thumbs"></div>`;
  const input = card.querySelector('.name');
  input.value = name;
  Object.defineProperty(cls, 'name', { get: () => input.value.trim(), enumerable: true });
  card.querySelector('.files').addEventListener('change', async (e) => {
    await addFiles(cls, [...e.target.files]);
    e.target.value = '';
  });
  const drop = card.querySelector('.drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void addFiles(cls, [...e.dataTransfer.files]);
  });
  // Held: a frame now and every 100 ms until released. A keyboard press (no pointer) takes one frame.
  const snap = card.querySelector('.snap');
  let timer;
  const stopRecording = () => clearInterval(timer);
  snap.addEventListener('pointerdown', () => {
    void captureFrame(cls);
    stopRecording();
    timer = setInterval(() => void captureFrame(cls), 100);
  });
  snap.addEventListener('pointerup', stopRecording);
  snap.addEventListener('pointerleave', stopRecording);
  snap.addEventListener('click', (e) => e.detail === 0 && void captureFrame(cls));
  card.querySelector('.remove').addEventListener('click', () => {
    state.classes = state.classes.filter((c) => c !== cls);
    for (const img of cls.images) if (img instanceof ImageBitmap) img.close();
    card.remove();
  });
  state.classes.push(cls);
  $('#classes').append(card);
  return cls;
}

async function startCamera() {
  const video = $('#video');
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    $('#cam-status').textContent = `no webcam: ${message(e)} (a webcam needs https:// or localhost, and your permission)`;
    $('#cam-status').className = 'error';
    return;
  }
  video.srcObject = state.stream;
  video.hidden = false;
  await video.play();
  for (const b of document.querySelectorAll('.snap')) b.disabled = false;
  $('#cam-start').disabled = true;
  $('#cam-status').textContent = `webcam on (${video.videoWidth}×${video.videoHeight}); hold a class's button to record frames into it`;
  $('#cam-status').className = 'muted';
  $('#cam-start').dataset.ready = 'true';
  if (state.model) $('#live').disabled = false;
}

// ---- 3. Train --------------------------------------------------------------------------------------------------

/** A seeded shuffle (mulberry32), so a run is repeatable. */
function shuffled(n, seed) {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

/** A short linear warmup, then cosine decay to zero: the last steps barely move, so BatchNorm's running
 * statistics (what predictions use) catch up with the final weights. */
function scheduledLr(lr, step, total) {
  const warmup = Math.min(3, Math.floor(total / 10));
  if (step < warmup) return (lr * (step + 1)) / (warmup + 1);
  return 0.5 * lr * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, total - warmup)));
}

function argmaxRows(logits, n) {
  const c = logits.length / n;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < c; j++) if (logits[i * c + j] > logits[i * c + best]) best = j;
    return best;
  });
}

/** Loss (left axis) and batch accuracy (right axis, 0–100 %) per step, smoothed over a few steps. */
function drawPlot() {
  const canvas = $('#plot');
  const ctx = canvas.getContext('2d');
  const W = canvas.width;
  const H = canvas.height;
  const pad = { l: 48, r: 48, t: 12, b: 22 };
  ctx.clearRect(0, 0, W, H);
  ctx.font = '12px system-ui, sans-serif';
  const h = state.history;
  const maxLoss = Math.max(1e-6, ...h.map((p) => p.loss));
  const steps = Math.max(2, state.totalSteps ?? h.length);
  const x = (i) => pad.l + ((W - pad.l - pad.r) * i) / (steps - 1);
  const y = (v, max) => H - pad.b - ((H - pad.t - pad.b) * v) / max;
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(pad.l, pad.t, W - pad.l - pad.r, H - pad.t - pad.b);
  ctx.fillStyle = '#555';
  ctx.fillText(maxLoss.toFixed(2), 4, pad.t + 10);
  ctx.fillText('0', 4, H - pad.b);
  ctx.fillText('100%', W - pad.r + 6, pad.t + 10);
  ctx.fillText('0%', W - pad.r + 6, H - pad.b);
  ctx.fillText(`step ${h.length} / ${steps}`, pad.l, H - 6);
  const line = (values, max, color, label, at) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v, max)) : ctx.moveTo(x(i), y(v, max))));
    ctx.stroke();
    ctx.fillStyle = color;
    ctx.fillText(label, at, H - 6);
  };
  const smooth = (key) => h.map((_, i) => {
    const w = h.slice(Math.max(0, i - 4), i + 1);
    return w.reduce((a, p) => a + p[key], 0) / w.length;
  });
  line(smooth('loss'), maxLoss, '#d0473a', 'loss', W / 2 - 60);
  line(smooth('acc'), 1, '#2f7d32', 'train accuracy', W / 2);
}

function setBusy(busy) {
  state.busy = busy;
  for (const id of ['#train', '#model', '#weights', '#size', '#add-class']) $(id).disabled = busy;
  const ready = !busy && !!state.model;
  $('#live').disabled = !ready || !state.stream;
  $('#try-files').disabled = !ready;
  for (const b of document.querySelectorAll('.save')) b.disabled = !ready;
}

async function train() {
  const classes = state.classes.filter((c) => c.images.length);
  const names = classes.map((c) => c.name);
  if (classes.length < 2) return setStatus('add images to at least two classes first', 'error');
  if (names.some((n) => !n)) return setStatus('every class with images needs a name', 'error');
  if (new Set(names).size !== names.length) return setStatus(`class names must differ (${names.join(', ')})`, 'error');
  const epochs = Number($('#epochs').value);
  const batchSize = Number($('#batch').value);
  const lr = Number($('#lr').value);
  if (!(Number.isInteger(epochs) && epochs >= 1) || !(Number.isInteger(batchSize) && batchSize >= 2) || !(lr > 0)) {
    return setStatus('epochs must be ≥ 1, the batch ≥ 2 and the learning rate > 0', 'error');
  }
  state.live = false;
  setBusy(true);
  setStatus('starting…', 'info', 'building'); // at once: the previous run's "trained" is over
  state.error = undefined;
  state.history = [];
  $('#try-out').replaceChildren();
  delete $('#try-out').dataset.done;
  const old = state.model;
  state.model = undefined;
  await old?.dispose().catch(() => {});
  const name = $('#model').value.trim();
  const pretrained = $('#weights').value === 'pretrained';
  const inputSize = Number($('#size').value) || undefined;
  const progress = $('#progress');
  try {
    setStatus(`building ${name}${pretrained ? ' and fetching its weights' : ' with random weights'}…`, 'info', 'building');
    const model = await createModel(name, {
      pretrained,
      hubUrl: state.hubUrl,
      numClasses: classes.length,
      classNames: names,
      inputSize,
      seed: SEED,
      // Random weights to learn from: timm's initialisation of the family (the default is for parity checks).
      init: 'timm',
      onProgress: (p) => {
        progress.value = p.total ? p.loaded / p.total : 0;
        setStatus(`downloading ${p.file}: ${(p.loaded / 1e6).toFixed(1)}${p.total ? ` of ${(p.total / 1e6).toFixed(1)}` : ''} MB`);
      },
    });
    const what = $('#what').value;
    const headOnly = what === 'head' || (what === 'auto' && pretrained);
    const cfg = model.info.cfg;
    setStatus(`building the training graph (${headOnly ? 'classifier only' : 'whole network'})…`);
    const trainer = await model.trainer({ optimizer: 'adamw', lr, weightDecay: 0.05, ...(headOnly ? { trainOnly: [cfg.classifier, ...(cfg.extraClassifiers ?? [])] } : {}) });
    const items = classes.flatMap((c, label) => c.images.map((source) => ({ source, label })));
    const b = Math.min(batchSize, items.length);
    const perEpoch = Math.ceil(items.length / b);
    state.totalSteps = epochs * perEpoch;
    progress.value = 0;
    const t0 = performance.now();
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = shuffled(items.length, SEED * 1000 + epoch);
      for (let s = 0; s < perEpoch; s++) {
        // Every batch is full (the last one wraps around the epoch's order): train-mode BatchNorm over one
        // image would normalize it to nothing.
        const idx = Array.from({ length: b }, (_, j) => order[(s * b + j) % items.length]);
        const labels = idx.map((i) => items[i].label);
        const batch = await model.preprocessBatch(idx.map((i) => items[i].source), { train: true, seed: SEED, epoch, offset: s * b, augment: AUGMENT });
        const r = await trainer.step(batch, labels, { lr: scheduledLr(lr, state.history.length, state.totalSteps) });
        const pred = argmaxRows(r.logits, b);
        const acc = pred.filter((p, i) => p === labels[i]).length / b;
        state.history.push({ epoch, loss: r.loss, acc });
        const done = state.history.length;
        progress.value = done / state.totalSteps;
        const secs = (performance.now() - t0) / 1000;
        setStatus(`epoch ${epoch + 1}/${epochs}, step ${done}/${state.totalSteps}: loss ${r.loss.toFixed(3)}, batch accuracy ${(100 * acc).toFixed(0)}% (${(secs / done).toFixed(2)} s/step on ${model.device})`);
        drawPlot();
      }
    }
    state.model = model;
    const last = state.history.slice(-perEpoch);
    const mean = (k) => last.reduce((a, p) => a + p[k], 0) / last.length;
    setStatus(`trained ${model.name} (${headOnly ? 'the classifier only' : 'the whole network'}, ${pretrained ? 'pretrained' : 'random init'}) on ${items.length} images of ${classes.length} classes in ${((performance.now() - t0) / 1000).toFixed(1)} s: last epoch's loss ${mean('loss').toFixed(3)}, accuracy ${(100 * mean('acc')).toFixed(0)}% (augmented). ${model.notes.filter((n) => !n.startsWith('random weights')).join('; ')}`, 'info', 'trained');
  } catch (e) {
    setStatus(`training failed: ${message(e)}`, 'error', 'failed');
  } finally {
    setBusy(false);
  }
}

// ---- 4. Try it ------------------------------------------------------------------------------------------------

function showBars(preds) {
  $('#live-out').replaceChildren(
    ...preds.map((p) => {
      const row = document.createElement('div');
      row.innerHTML = '<span class="label"></span><div><div class="bar"></div></div><span class="p"></span>';
      row.querySelector('.label').textContent = p.label;
      row.querySelector('.bar').style.width = `${(100 * p.prob).toFixed(1)}%`;
      row.querySelector('.p').textContent = `${(100 * p.prob).toFixed(1)}%`;
      row.dataset.label = p.label;
      return row;
    }),
  );
}

async function liveLoop() {
  const video = $('#video');
  const model = state.model;
  let frames = 0;
  while (state.live && state.model === model) {
    const frame = await createImageBitmap(video);
    try {
      showBars(await model.classify(frame, { topk: Math.min(5, model.info.numClasses) }));
      $('#live-out').dataset.frames = String(++frames);
    } catch (e) {
      setStatus(`live prediction failed: ${message(e)}`, 'error');
      state.live = false;
    } finally {
      frame.close();
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  $('#live').textContent = 'Live webcam predictions';
}

async function tryFiles(files) {
  const model = state.model;
  for (const file of files) {
    const li = document.createElement('li');
    li.dataset.file = file.name;
    try {
      const [top] = await model.classify(file, { topk: 1 });
      const bitmap = await createImageBitmap(file);
      const c = document.createElement('canvas');
      c.width = bitmap.width;
      c.height = bitmap.height;
      c.getContext('2d').drawImage(bitmap, 0, 0);
      bitmap.close();
      li.append(c, `${top.label} ${(100 * top.prob).toFixed(1)}%`);
      Object.assign(li.dataset, { label: top.label, index: String(top.index), prob: String(top.prob) });
    } catch (e) {
      li.textContent = `${file.name}: ${message(e)}`;
      li.className = 'error';
      li.dataset.error = message(e);
    }
    $('#try-out').append(li);
  }
  $('#try-out').dataset.done = String($('#try-out').children.length);
}

// ---- 5. Download ----------------------------------------------------------------------------------------------

async function save(what) {
  const m = state.model;
  const [body, file, type] =
    what === 'safetensors' ? [await m.saveSafetensors(), 'model.safetensors', 'application/octet-stream']
    : what === 'config' ? [await m.saveConfig(), 'config.json', 'application/json']
    : [await m.saveOnnx(), 'model.onnx', 'application/octet-stream'];
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([body], { type }));
  a.download = file;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

// ---- Start ----------------------------------------------------------------------------------------------------

async function hubConfig() {
  // `tsimm studio --hub-url URL` serves studio.json; any page may say ?hub=URL. A static host has neither.
  const q = new URLSearchParams(location.search).get('hub');
  if (q) return { hubUrl: q };
  try {
    const r = await fetch('./studio.json');
    if (r.ok) return await r.json();
  } catch {
    /* no studio.json: the default hub */
  }
  return {};
}

async function start() {
  state.hubUrl = (await hubConfig()).hubUrl || undefined;
  $('#zoo').replaceChildren(...listModels().map((n) => Object.assign(document.createElement('option'), { value: n })));
  for (const id of ['#model', '#size']) $(id).addEventListener('change', describe);
  describe();
  addClass('class 1');
  addClass('class 2');
  $('#add-class').addEventListener('click', () => addClass(`class ${state.nextClass}`));
  $('#cam-start').addEventListener('click', startCamera);
  $('#train').addEventListener('click', train);
  $('#live').addEventListener('click', () => {
    state.live = !state.live;
    $('#live').textContent = state.live ? 'Stop' : 'Live webcam predictions';
    if (state.live) void liveLoop();
  });
  $('#try-files').addEventListener('change', async (e) => {
    await tryFiles([...e.target.files]);
    e.target.value = '';
  });
  for (const b of document.querySelectorAll('.save')) {
    b.addEventListener('click', () => save(b.dataset.what).catch((e) => setStatus(`saving failed: ${message(e)}`, 'error')));
  }
  drawPlot();
  document.body.dataset.ready = 'true';
}

start().catch((e) => setStatus(`the page failed to start: ${message(e)}`, 'error', 'failed'));
