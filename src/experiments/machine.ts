import { availableParallelism, cpus, platform } from 'node:os';
import { plural } from '../words.js';

/** What a timing depends on besides lockstep: printed in bench's header and JSON, and stored in traces. */
export interface MachineFacts {
  cpu: string;
  /** Cores this process may use (os.availableParallelism()): the thread counts that can run at once. */
  cores: number;
  platform: string;
  node: string;
  v8: string;
  kernels: string;
}

export function machineFacts(kernels: string): MachineFacts {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    platform: `${platform()}-${process.arch}`,
    node: process.versions.node,
    v8: process.versions.v8,
    kernels,
  };
}

export function formatMachine(m: MachineFacts): string {
  return `${m.cpu}, ${plural(m.cores, 'core')}, ${m.platform}, Node ${m.node} (V8 ${m.v8}), kernels ${m.kernels}`;
}
