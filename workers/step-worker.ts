/**
 * The piscina worker: one long task per thread that runs the coordinator's commands until Stop. It learns
 * what to do from the control block in shared memory; no step sends it a message.
 */
import { createKernels, type KernelName } from '../src/kernels/select.js';
import { viewsOf, type SharedPlan } from '../src/shared/buffers.js';
import { AbortedError } from '../src/errors.js';
import { abortAll, Command, Ctl, waitForChange } from '../src/shared/control.js';
import { createThreadContext, evaluateSplit, trainStep } from './step.js';
import { SPLITS } from '../src/model/trainer.js';

export interface WorkerTask {
  memory: WebAssembly.Memory;
  plan: SharedPlan;
  thread: number;
  kernels: KernelName;
}

export interface WorkerResult {
  thread: number;
  steps: number;
  aborted: boolean;
}

export default function stepWorker(task: WorkerTask): WorkerResult {
  const views = viewsOf(task.memory, task.plan);
  const ctl = views.control;
  const ctx = createThreadContext(views, createKernels(task.kernels, task.memory), task.thread);
  // A worker that ends without a word (process.exit in the thread) must still wake the threads waiting for it.
  const onExit = () => abortAll(ctl);
  process.on('exit', onExit);
  let seen = Atomics.load(ctl, Ctl.CommandGen);
  Atomics.add(ctl, Ctl.Ready, 1);
  Atomics.notify(ctl, Ctl.Ready);
  try {
    for (;;) {
      waitForChange(ctl, Ctl.CommandGen, seen, task.plan.spinMs);
      seen = Atomics.load(ctl, Ctl.CommandGen);
      const command = Atomics.load(ctl, Ctl.Command);
      if (command === Command.Stop) return { thread: task.thread, steps: ctx.steps, aborted: false };
      if (command === Command.Train) trainStep(ctx, Atomics.load(ctl, Ctl.Arg0), Atomics.load(ctl, Ctl.Arg1));
      else if (command === Command.Eval)
        evaluateSplit(ctx, SPLITS[Atomics.load(ctl, Ctl.Arg0)], Atomics.load(ctl, Ctl.Arg1));
    }
  } catch (err) {
    if (err instanceof AbortedError) return { thread: task.thread, steps: ctx.steps, aborted: true };
    // Wake every other thread before dying, so none waits forever on this one.
    abortAll(ctl);
    throw err;
  } finally {
    process.off('exit', onExit);
  }
}
