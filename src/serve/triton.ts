/**
 * Triton's model configuration and statistics extensions over REST, in Triton's JSON shapes, so stock Triton
 * tools (perf_analyzer, tritonclient's get_model_config / get_inference_statistics) work against `tsimm serve`.
 * perf_analyzer reads from the config max_batch_size, input[].is_shape_tensor / optional, output[].is_shape_tensor,
 * dynamic_batching / sequence_batching (the scheduler), model_transaction_policy.decoupled and
 * response_cache.enable; from the stats, per (name, version): inference_count, execution_count and
 * inference_stats.{success, queue, compute_input, compute_infer, compute_output, cache_hit, cache_miss}.{count, ns}
 * as unsigned integers. Pure data: no sockets.
 */
import type { ModelSpec } from './protocol.js';

/** What the configuration reports of how a model is served. */
export interface ServingConfig {
  maxQueueDelayMs: number;
  instances: number;
  /** ONNX Runtime intra-op threads per instance. */
  threads: number;
  kind: 'KIND_CPU' | 'KIND_GPU';
}

/** GET /v2/models/{m}[/versions/{v}]/config: the ModelConfig message as Triton writes it in JSON. */
export function modelConfig(m: ModelSpec, s: ServingConfig): Record<string, unknown> {
  return {
    name: m.name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: m.maxBatch,
    input: [{ name: m.input.name, data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: [...m.input.shape], is_shape_tensor: false, allow_ragged_batch: false, optional: false }],
    output: [{ name: m.output.name, data_type: 'TYPE_FP32', dims: [m.output.classes], label_filename: '', is_shape_tensor: false }],
    batch_input: [],
    batch_output: [],
    dynamic_batching: { preferred_batch_size: [], max_queue_delay_microseconds: Math.round(s.maxQueueDelayMs * 1000), preserve_ordering: false, priority_levels: 0, default_priority_level: 0, priority_queue_policy: {} },
    instance_group: [{ name: m.name, kind: s.kind, count: s.instances, gpus: [], secondary_devices: [], profile: [], passive: false, host_policy: '' }],
    default_model_filename: 'model.onnx',
    cc_model_filenames: {},
    metric_tags: {},
    parameters: { intra_op_thread_count: { string_value: String(s.threads) } },
    model_warmup: [],
    model_transaction_policy: { decoupled: false },
    response_cache: { enable: false },
  };
}

interface Duration {
  count: number;
  ns: number;
}
const zero = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, ms: number, count = 1) => {
  d.count += count;
  d.ns += Math.max(0, Math.round(ms * 1e6));
};

/**
 * One model's cumulative statistics, as Triton counts them: success, fail, queue and the three compute phases
 * per request; inference_count per image and execution_count per batch; batch_stats per batch size.
 */
export class ModelStats {
  inferenceCount = 0;
  executionCount = 0;
  lastInference = 0;
  readonly success = zero();
  readonly fail = zero();
  readonly queue = zero();
  readonly computeInput = zero();
  readonly computeInfer = zero();
  readonly computeOutput = zero();
  private readonly batches = new Map<number, { input: Duration; infer: Duration; output: Duration }>();

  /** One execution of `images` images for `requests` requests; phase times of the whole batch, in ms. */
  execution(images: number, t: { inputMs: number; inferMs: number; outputMs: number }): void {
    this.executionCount++;
    this.inferenceCount += images;
    this.lastInference = Date.now();
    let b = this.batches.get(images);
    if (!b) this.batches.set(images, (b = { input: zero(), infer: zero(), output: zero() }));
    add(b.input, t.inputMs);
    add(b.infer, t.inferMs);
    add(b.output, t.outputMs);
  }

  /** One request of an execution: its queue time and the batch's phase times (each request counts them once). */
  request(queueMs: number, t: { inputMs: number; inferMs: number; outputMs: number }): void {
    add(this.queue, queueMs);
    add(this.computeInput, t.inputMs);
    add(this.computeInfer, t.inferMs);
    add(this.computeOutput, t.outputMs);
    add(this.success, queueMs + t.inputMs + t.inferMs + t.outputMs);
  }

  failed(ms: number): void {
    add(this.fail, ms);
  }

  json(name: string, version: string): Record<string, unknown> {
    return {
      name,
      version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: { success: this.success, fail: this.fail, queue: this.queue, compute_input: this.computeInput, compute_infer: this.computeInfer, compute_output: this.computeOutput, cache_hit: zero(), cache_miss: zero() },
      response_stats: {},
      batch_stats: [...this.batches.entries()].sort((a, b) => a[0] - b[0]).map(([size, d]) => ({ batch_size: size, compute_input: d.input, compute_infer: d.infer, compute_output: d.output })),
      memory_usage: [],
    };
  }
}
