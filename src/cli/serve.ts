/** `tsimm serve`: the Open Inference Protocol server (src/serve). */
import { UsageError, type Command } from './args.js';

export const serve: Command = {
  usage: 'MODEL... [--port 8080] [--host 127.0.0.1]',
  summary: 'Serve models over the Open Inference Protocol (KServe v2 REST), with dynamic batching in worker threads.',
  options: {},
  async run() {
    throw new UsageError('not built yet');
  },
};
