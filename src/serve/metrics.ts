/**
 * Prometheus metrics in the text exposition format (0.0.4): counters, gauges and histograms with labels.
 * Inference metrics carry Triton's names (nv_inference_*) where Triton has one, so dashboards built for Triton
 * read tsimm too; histograms Triton lacks are tsimm_*.
 */
import { cpuUsage, memoryUsage } from 'node:process';

type Labels = Record<string, string>;
const key = (l: Labels) => JSON.stringify(Object.entries(l).sort());
const fmtLabels = (l: Labels, extra = '') => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
};

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}
  abstract lines(): string[];
  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...this.lines()].join('\n');
  }
}

export class Counter extends Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string, type: 'counter' | 'gauge' = 'counter') {
    super(name, help, type);
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const v = this.values.get(k);
    if (v) v.value += by;
    else this.values.set(k, { labels, value: by });
  }
  set(labels: Labels, value: number): void {
    this.values.set(key(labels), { labels, value });
  }
  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.value ?? 0;
  }
  lines(): string[] {
    return [...this.values.values()].map((v) => `${this.name}${fmtLabels(v.labels)} ${v.value}`);
  }
}

export class Gauge extends Counter {
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
}

export class Histogram extends Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    readonly buckets: number[],
  ) {
    super(name, help, 'histogram');
  }
  observe(labels: Labels, x: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (x <= this.buckets[i]!) s.counts[i]!++;
    s.sum += x;
    s.count++;
  }
  lines(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${fmtLabels(s.labels, `le="${b}"`)} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${fmtLabels(s.labels, 'le="+Inf"')} ${s.count}`, `${this.name}_sum${fmtLabels(s.labels)} ${s.sum}`, `${this.name}_count${fmtLabels(s.labels)} ${s.count}`);
    }
    return out;
  }
}

const SECONDS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];

/** The server's metrics. */
export class ServerMetrics {
  readonly success = new Counter('nv_inference_request_success', 'Number of successful inference requests, all batch sizes');
  readonly failure = new Counter('nv_inference_request_failure', 'Number of failed inference requests, all batch sizes, by reason (REJECTED: queue full or timed out, CANCELED: client gone, BACKEND: the model failed, OTHER: a bad request)');
  readonly count = new Counter('nv_inference_count', 'Number of inferences performed (each image of a batch counts)');
  readonly execCount = new Counter('nv_inference_exec_count', 'Number of model executions performed (a batch counts once)');
  readonly requestUs = new Counter('nv_inference_request_duration_us', 'Cumulative inference request duration in microseconds (queue and compute)');
  readonly queueUs = new Counter('nv_inference_queue_duration_us', 'Cumulative inference queuing duration in microseconds');
  readonly computeUs = new Counter('nv_inference_compute_infer_duration_us', 'Cumulative compute inference duration in microseconds');
  readonly pending = new Gauge('nv_inference_pending_request_count', 'Instantaneous number of pending requests awaiting execution per model');
  readonly queueHist = new Histogram('tsimm_inference_queue_duration_seconds', 'Time a request waited in the batch queue', SECONDS);
  readonly computeHist = new Histogram('tsimm_inference_compute_duration_seconds', 'Model execution time per batch', SECONDS);
  readonly batchHist = new Histogram('tsimm_inference_batch_size', 'Images per model execution', [1, 2, 4, 8, 16, 32, 64, 128]);
  readonly http = new Counter('tsimm_http_requests_total', 'HTTP requests by route and status code');
  private readonly started = Date.now() / 1000;

  render(): string {
    const mem = memoryUsage();
    const cpu = cpuUsage();
    const proc = [
      gauge('process_resident_memory_bytes', 'Resident memory size in bytes', mem.rss),
      gauge('process_heap_bytes', 'V8 heap used in bytes', mem.heapUsed),
      gauge('process_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (buffers) in bytes', mem.external + mem.arrayBuffers),
      counter('process_cpu_user_seconds_total', 'User CPU time spent in seconds', cpu.user / 1e6),
      counter('process_cpu_system_seconds_total', 'System CPU time spent in seconds', cpu.system / 1e6),
      gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch in seconds', this.started),
    ];
    const all = [this.success, this.failure, this.count, this.execCount, this.requestUs, this.queueUs, this.computeUs, this.pending, this.queueHist, this.computeHist, this.batchHist, this.http];
    return `${[...all.map((m) => m.render()), ...proc].join('\n')}\n`;
  }
}

function gauge(name: string, help: string, v: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${v}`;
}
function counter(name: string, help: string, v: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${v}`;
}
