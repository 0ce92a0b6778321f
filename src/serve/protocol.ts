/**
 * The Open Inference Protocol (KServe "v2") over REST: request parsing and validation, response bodies, and
 * Triton's two extensions we implement — binary tensor data and classification. Pure functions: no sockets,
 * no sessions, so every rule is testable on its own.
 */

/** A served model as the protocol sees it. */
export interface ModelSpec {
  name: string;
  version: string;
  /** The input tensor: FP32 [-1, C, H, W]. */
  input: { name: string; shape: [number, number, number] };
  /** One output: FP32 [-1, classes]. */
  output: { name: string; classes: number };
  maxBatch: number;
  labels: string[];
  /** Normalization for UINT8 pixel inputs (x / 255 - mean) / std per channel. */
  mean: [number, number, number];
  std: [number, number, number];
}

/** An error the client caused or must hear about: status code and a one-line message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface OutputRequest {
  name: string;
  /** Triton's classification extension: the top `classification` classes as "value:index:label" strings. */
  classification?: number;
  binary: boolean;
}

export interface InferRequest {
  id?: string;
  /** Triton's `timeout` request parameter (given in microseconds), in ms: the longest it may wait queued. */
  timeoutMs?: number;
  /** The normalized float32 batch [n, C, H, W]. */
  data: Float32Array;
  n: number;
  outputs: OutputRequest[];
}

const SIZES: Record<string, number> = { FP32: 4, UINT8: 1, FP64: 8, FP16: 2, INT8: 1, INT16: 2, INT32: 4, INT64: 8, UINT16: 2, UINT32: 4, UINT64: 8, BOOL: 1, BF16: 2, BYTES: 0 };
const ACCEPTED = ['FP32', 'UINT8'];

type Json = Record<string, unknown>;
const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Split a request body into its JSON header and binary part. With Triton's binary extension the header's
 * length comes in `Inference-Header-Content-Length`; otherwise the whole body is JSON.
 */
export function splitBody(body: Buffer, headerLength?: string): { json: Json; binary: Buffer } {
  let jsonBytes: Buffer = body;
  let binary: Buffer = Buffer.alloc(0);
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.length) throw new HttpError(400, `Inference-Header-Content-Length is ${JSON.stringify(headerLength)} but the body has ${body.length} bytes; it must be the JSON header's length`);
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  if (!jsonBytes.length) throw new HttpError(400, 'the request body is empty; send an inference request (JSON with "inputs")');
  let json: unknown;
  try {
    json = JSON.parse(jsonBytes.toString('utf8'));
  } catch (e) {
    // V8's message quotes the text around the error: never echo the body (it may be binary) — say where.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    const gz = jsonBytes[0] === 0x1f && jsonBytes[1] === 0x8b;
    const hint = gz ? '; it looks gzip-compressed: send Content-Encoding: gzip' : headerLength === undefined && jsonBytes.length > 0 && jsonBytes[0] === 0x7b ? '; binary tensors need Inference-Header-Content-Length' : '';
    throw new HttpError(400, `the request is not valid JSON${at !== undefined ? ` (at byte ${at})` : ''}${hint}`);
  }
  if (!isObject(json)) throw new HttpError(400, 'the request must be a JSON object with "inputs"');
  return { json, binary };
}

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Validate an infer request against the model and return its normalized float32 batch. */
export function parseInferRequest(json: Json, binary: Buffer, m: ModelSpec): InferRequest {
  const inputs = json['inputs'];
  if (!Array.isArray(inputs) || !inputs.length) throw new HttpError(400, 'the request has no "inputs" array; send one input tensor');
  if (inputs.length !== 1) throw new HttpError(400, `${m.name} takes one input ("${m.input.name}"), the request has ${inputs.length}`);
  const inp = inputs[0];
  if (!isObject(inp)) throw new HttpError(400, 'each input must be an object with name, shape, datatype and data');
  const name = inp['name'];
  if (name !== m.input.name) throw new HttpError(400, `${m.name} has no input ${JSON.stringify(name)}; its input is "${m.input.name}"`);
  const datatype = inp['datatype'];
  if (typeof datatype !== 'string' || !(datatype in SIZES)) throw new HttpError(400, `input "${m.input.name}" has datatype ${JSON.stringify(datatype)}, which is not an Open Inference Protocol type; send FP32 (normalized) or UINT8 (pixels)`);
  if (!ACCEPTED.includes(datatype)) throw new HttpError(400, `input "${m.input.name}" is ${datatype}; ${m.name} takes FP32 (normalized) or UINT8 (pixels 0-255)`);
  const shape = inp['shape'];
  const [c, h, w] = m.input.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw new HttpError(400, `input "${m.input.name}" needs a "shape" of non-negative integers, like [1, ${c}, ${h}, ${w}]`);
  if (shape.length !== 4 || shape[1] !== c || shape[2] !== h || shape[3] !== w || shape[0] < 1) {
    throw new HttpError(400, `input "${m.input.name}" has shape [${shape.join(', ')}]; ${m.name} takes [N, ${c}, ${h}, ${w}] with N ≥ 1 (POST an image to /v2/models/${m.name}/classify to have it resized)`);
  }
  const n = shape[0] as number;
  if (n > m.maxBatch) throw new HttpError(400, `the batch of ${n} is over ${m.name}'s max batch size ${m.maxBatch}; split the request`);
  const count = product(shape as number[]);
  const params = isObject(inp['parameters']) ? inp['parameters'] : {};
  const binarySize = params['binary_data_size'];
  let values: ArrayLike<number>;
  if (binarySize !== undefined) {
    if (!Number.isInteger(binarySize) || (binarySize as number) < 0) throw new HttpError(400, 'binary_data_size must be a non-negative integer');
    const expect = count * SIZES[datatype]!;
    if (binarySize !== expect) throw new HttpError(400, `input "${m.input.name}" declares ${binarySize} binary bytes; [${shape.join(', ')}] ${datatype} is ${expect}`);
    if (binary.length !== expect) throw new HttpError(400, `the body carries ${binary.length} binary bytes after the JSON header; input "${m.input.name}" declares ${expect}`);
    if (datatype === 'FP32') {
      // One copy, into an aligned buffer the batcher can hand to the worker as it is. Non-finite values pass
      // through as Triton passes them (NaN in, NaN out): perf_analyzer's default data are random bytes.
      const x = new Float32Array(count);
      new Uint8Array(x.buffer).set(binary);
      values = x;
    } else values = binary;
  } else {
    if (binary.length) throw new HttpError(400, `the body has ${binary.length} bytes after the JSON header but no input declares binary_data_size`);
    const data = inp['data'];
    if (!Array.isArray(data)) throw new HttpError(400, `input "${m.input.name}" has no "data" array (or binary_data_size)`);
    const flat = data.flat(3) as unknown[];
    if (flat.length !== count) throw new HttpError(400, `input "${m.input.name}" has ${flat.length} values; shape [${shape.join(', ')}] needs ${count}`);
    const bad = flat.findIndex((x) => typeof x !== 'number' || (datatype === 'UINT8' && (!Number.isInteger(x) || x < 0 || x > 255)));
    if (bad >= 0) throw new HttpError(400, `input "${m.input.name}" element ${bad} (index [${position(bad, shape as number[]).join(', ')}]) is ${JSON.stringify(flat[bad])}; ${datatype === 'UINT8' ? 'UINT8 takes integers 0-255' : 'FP32 takes numbers'}`);
    values = flat as number[];
  }
  const x = datatype === 'FP32' ? (values instanceof Float32Array ? values : Float32Array.from(values)) : normalizePixels(values, n, m);
  const id = json['id'];
  if (id !== undefined && typeof id !== 'string') throw new HttpError(400, '"id" must be a string');
  const top = isObject(json['parameters']) ? json['parameters'] : {};
  const timeout = top['timeout'];
  if (timeout !== undefined && (!Number.isInteger(timeout) || (timeout as number) < 0)) throw new HttpError(400, `the "timeout" parameter is microseconds, a non-negative integer; got ${JSON.stringify(timeout)}`);
  return { id, data: x, n, outputs: parseOutputs(json, m), ...(timeout ? { timeoutMs: (timeout as number) / 1000 } : {}) };
}

/** The multi-index of flat element `i` of a row-major tensor of `shape`. */
export function position(i: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

/** UINT8 pixels NCHW → the model's normalized float32 input (no resize: that is /classify's job). */
function normalizePixels(px: ArrayLike<number>, n: number, m: ModelSpec): Float32Array {
  const [c, h, w] = m.input.shape;
  const plane = h * w;
  const x = new Float32Array(n * c * plane);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const mean = m.mean[ch % 3]!;
      const std = m.std[ch % 3]!;
      const off = (b * c + ch) * plane;
      for (let i = 0; i < plane; i++) x[off + i] = (px[off + i]! / 255 - mean) / std;
    }
  }
  return x;
}

function classCount(k: unknown, where: string): number | undefined {
  if (k === undefined) return undefined;
  if (!Number.isInteger(k) || (k as number) < 1) throw new HttpError(400, `${where} "classification" must be a positive integer (how many classes), got ${JSON.stringify(k)}`);
  return k as number;
}

/**
 * The requested outputs. Triton's classification extension is an output parameter
 * (`"outputs": [{"name": ..., "parameters": {"classification": k}}]`); Triton passes a request-level
 * `"parameters": {"classification": k}` to the backend, which ignores it. Here the request-level form is the
 * default for every output that does not set its own, as `binary_data_output` is for `binary_data`.
 */
function parseOutputs(json: Json, m: ModelSpec): OutputRequest[] {
  const params = isObject(json['parameters']) ? json['parameters'] : {};
  const binaryAll = params['binary_data_output'] === true;
  const kAll = classCount(params['classification'], 'the request\'s');
  const out = (binary: boolean, k: number | undefined): OutputRequest => ({ name: m.output.name, binary, ...(k !== undefined ? { classification: Math.min(k, m.output.classes) } : {}) });
  const outputs = json['outputs'];
  if (outputs === undefined) return [out(binaryAll, kAll)];
  if (!Array.isArray(outputs)) throw new HttpError(400, '"outputs" must be an array of {"name": ...}');
  return outputs.map((o) => {
    if (!isObject(o) || o['name'] !== m.output.name) throw new HttpError(400, `${m.name} has no output ${JSON.stringify(isObject(o) ? o['name'] : o)}; its output is "${m.output.name}"`);
    const p = isObject(o['parameters']) ? o['parameters'] : {};
    const binary = p['binary_data'] === undefined ? binaryAll : p['binary_data'] === true;
    return out(binary, classCount(p['classification'], `output "${m.output.name}"`) ?? kAll);
  });
}

/** Output tensors in OIP form; binary ones as raw little-endian bytes (BYTES: 4-byte length + string). */
export interface ResponseBody {
  body: Buffer;
  headers: Record<string, string>;
}

/** The top `k` classes of a row as Triton's "<value>:<index>:<label>" strings (value: the raw output). */
export function classificationStrings(row: Float32Array, k: number, labels: string[]): string[] {
  const idx = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
  return idx.map((i) => `${row[i]!}:${i}${labels[i] !== undefined ? `:${labels[i]}` : ''}`);
}

export function inferResponse(m: ModelSpec, req: InferRequest, logits: Float32Array): ResponseBody {
  const classes = m.output.classes;
  const parts: Buffer[] = [];
  const outputs = req.outputs.map((o) => {
    let datatype: string;
    let shape: number[];
    let data: unknown[] | undefined;
    let bytes: Buffer | undefined;
    if (o.classification) {
      const strings: string[] = [];
      for (let b = 0; b < req.n; b++) strings.push(...classificationStrings(logits.subarray(b * classes, (b + 1) * classes), o.classification, m.labels));
      datatype = 'BYTES';
      shape = [req.n, o.classification];
      if (o.binary) bytes = Buffer.concat(strings.flatMap((s) => { const b = Buffer.from(s, 'utf8'); const len = Buffer.alloc(4); len.writeUInt32LE(b.length); return [len, b]; }));
      else data = strings;
    } else {
      datatype = 'FP32';
      shape = [req.n, classes];
      if (o.binary) bytes = Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength);
      else data = Array.from(logits);
    }
    if (bytes) parts.push(bytes);
    return { name: o.name, datatype, shape, ...(bytes ? { parameters: { binary_data_size: bytes.length } } : { data }) };
  });
  const header = Buffer.from(JSON.stringify({ model_name: m.name, model_version: m.version, ...(req.id !== undefined ? { id: req.id } : {}), outputs }));
  if (!parts.length) return { body: header, headers: { 'content-type': 'application/json' } };
  return { body: Buffer.concat([header, ...parts]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
}

export const SERVER_EXTENSIONS = ['binary_tensor_data', 'classification', 'model_configuration', 'statistics'];

export function modelMetadata(m: ModelSpec, extra: Record<string, unknown>): Json {
  return {
    name: m.name,
    versions: [m.version],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: m.input.name, datatype: 'FP32', shape: [-1, ...m.input.shape] }],
    outputs: [{ name: m.output.name, datatype: 'FP32', shape: [-1, m.output.classes] }],
    parameters: { max_batch_size: m.maxBatch, ...extra },
  };
}
