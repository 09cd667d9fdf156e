/**
 * The piscina worker: one long task per thread that loops over the coordinator's commands until STOP.
 * It learns what to do from the control block in shared memory; no step sends it a message.
 */
import { createKernels, type KernelName } from '../src/kernels/select.js';
import { viewsOf, type SharedPlan } from '../src/shared/buffers.js';
import { abortAll, AbortedError, barrier, Command, Ctl, injectTestFault, waitForChange } from '../src/shared/control.js';
import { createThreadContext, evaluateRows, trainRows, updateParameters } from './thread-work.js';

export interface WorkerTask {
  memory: WebAssembly.Memory;
  plan: SharedPlan;
  thread: number;
  kernels: KernelName;
  lr: number;
  /** Milliseconds to spin before Atomics.wait (0 when threads outnumber cores). */
  spinMs: number;
}

export interface WorkerResult {
  thread: number;
  steps: number;
  aborted: boolean;
}

export default function stepWorker(task: WorkerTask): WorkerResult {
  const views = viewsOf(task.memory, task.plan);
  const ctl = views.control;
  const ctx = createThreadContext(views, createKernels(task.kernels, task.memory), task.thread, task.plan.threads, task.lr);
  let steps = 0;
  let seen = Atomics.load(ctl, Ctl.CommandGen);
  Atomics.add(ctl, Ctl.Ready, 1);
  Atomics.notify(ctl, Ctl.Ready);
  try {
    for (;;) {
      waitForChange(ctl, Ctl.CommandGen, seen, task.spinMs);
      seen = Atomics.load(ctl, Ctl.CommandGen);
      const command = Atomics.load(ctl, Ctl.Command);
      if (command === Command.Stop) return { thread: task.thread, steps, aborted: false };
      if (command === Command.Train) {
        const start = Atomics.load(ctl, Ctl.Arg0);
        const rows = Atomics.load(ctl, Ctl.Arg1);
        injectTestFault(ctl, task.thread);
        trainRows(ctx, start, rows);
        barrier(ctl, ctx.threads, task.spinMs);
        updateParameters(ctx, rows);
        steps++;
      } else if (command === Command.Eval) {
        evaluateRows(ctx, Atomics.load(ctl, Ctl.Arg0) === 0 ? 'train' : 'test', Atomics.load(ctl, Ctl.Arg1));
      }
      barrier(ctl, ctx.threads, task.spinMs);
    }
  } catch (err) {
    if (err instanceof AbortedError) return { thread: task.thread, steps, aborted: true };
    // Wake every other thread before dying, so none waits forever on this one.
    abortAll(ctl);
    throw err;
  }
}
