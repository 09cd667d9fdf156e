/**
 * The control block: a few Int32 words in shared memory through which the coordinator tells the workers
 * what to do and every thread meets the others at barriers. A step sends no message; it bumps Ctl.CommandGen.
 */
import { AbortedError } from '../errors.js';

/** Two cache lines (the arena aligns buffers to 64 bytes): see NextChunk. */
export const CONTROL_WORDS = 32;

export enum Ctl {
  /** Bumped by the coordinator after it has written a new command. Workers wait for it to change. */
  CommandGen = 0,
  Command = 1,
  /** Command arguments: TRAIN (start in the epoch's order, rows), EVAL (split, count). */
  Arg0 = 2,
  Arg1 = 3,
  BarrierCount = 4,
  BarrierGen = 5,
  /** Workers that have set up their views and kernels. */
  Ready = 6,
  /** Non-zero once any thread failed: every wait gives up, so no thread hangs on a dead one. */
  Abort = 7,
  /** Test-only fault injection (see injectTestFault): thread index + 1, step, kind. */
  FaultThread = 8,
  FaultStep = 9,
  FaultKind = 10,
  /** Steps trained since the pool started (the fault hook counts these). */
  StepCount = 11,
  /**
   * Work counters, zeroed with each command: the next chunk of rows (a step's first half, evaluation) and
   * the next parameter block (the second half), workers/step.ts. On the second cache line: working threads
   * bump them while finished ones spin on the first line's BarrierGen, and sharing a line would make every
   * bump wait for the spinner's copy.
   */
  NextChunk = 16,
  NextBlock = 17,
}

export enum Command {
  None = 0,
  Train = 1,
  Eval = 2,
  Stop = 3,
}

export enum FaultKind {
  Throw = 1,
  Exit = 2,
}

/**
 * Waits until ctl[index] !== seen. It spins first, because waking a thread parked in Atomics.wait takes
 * longer than an uneven half of a step, and on a 784-1024-1024-10 step a thread that had parked ran each
 * call of its next half about a quarter slower; but only for spinMs, or half the shortest of this thread's
 * last 8 halves of a step if longer, because a spinner takes the core from the thread it waits for when
 * another process wants it, and between commands a worker should sleep (ARCHITECTURE.md, "Barriers", with
 * its measurements). That share of a half shrinks after each wait that outlasts its spin (another process
 * has the core) and grows back after each that does not. Callers pass spinMs = 0 when threads outnumber cores.
 */
export function waitForChange(ctl: Int32Array, index: number, seen: number, spinMs: number): void {
  const arrived = performance.now();
  const spin = spinMs > 0 ? Math.max(spinMs, spinShare * Math.min(...worked)) : 0;
  waitFor(ctl, index, seen, spin);
  workSince = performance.now();
  spinShare = workSince - arrived > spin ? spinShare * 0.7 : Math.min(SPIN_SHARE, spinShare * 1.1);
}

const SPIN_SHARE = 0.5;
// This thread's own (each thread has its own copy of this module): when it last stopped waiting, the share of
// a half it spins for, and how long it worked before each of its last 8 barriers (the shortest counts: a
// thread that another process held off the core worked no longer for it).
let workSince = 0;
let spinShare = SPIN_SHARE;
const worked = new Float64Array(8);
let barriers = 0;

function waitFor(ctl: Int32Array, index: number, seen: number, spinMs: number): void {
  if (spinMs > 0) {
    const spinUntil = performance.now() + spinMs;
    // performance.now() costs more than a load, so the clock is read once per 256 checks.
    for (let i = 1; ; i++) {
      if (Atomics.load(ctl, index) !== seen) return;
      if (Atomics.load(ctl, Ctl.Abort) !== 0) throw new AbortedError();
      if ((i & 255) === 0 && performance.now() > spinUntil) break;
    }
  }
  for (;;) {
    if (Atomics.load(ctl, Ctl.Abort) !== 0) throw new AbortedError();
    if (Atomics.load(ctl, index) !== seen) return;
    // In bounded waits, so that Abort is re-checked even if the thread that set it could not notify.
    Atomics.wait(ctl, index, seen, 100);
  }
}

/**
 * Arrive at the barrier. Returns the generation the barrier is at, to wait on (waitForChange), or -1
 * if this thread was the last to arrive and has already opened it.
 */
function arrive(ctl: Int32Array, threads: number): number {
  const gen = Atomics.load(ctl, Ctl.BarrierGen);
  if (Atomics.add(ctl, Ctl.BarrierCount, 1) === threads - 1) {
    Atomics.store(ctl, Ctl.BarrierCount, 0);
    Atomics.add(ctl, Ctl.BarrierGen, 1);
    Atomics.notify(ctl, Ctl.BarrierGen);
    return -1;
  }
  return gen;
}

/** A full barrier, for every thread (the coordinator too): arrive, then wait for the last arrival. */
export function barrier(ctl: Int32Array, threads: number, spinMs: number): void {
  if (workSince > 0) worked[barriers++ % worked.length] = performance.now() - workSince;
  const gen = arrive(ctl, threads);
  if (gen >= 0) waitForChange(ctl, Ctl.BarrierGen, gen, spinMs);
  else workSince = performance.now();
}

/** Marks the run failed and wakes every waiting thread so that each sees Abort and stops. */
export function abortAll(ctl: Int32Array): void {
  Atomics.store(ctl, Ctl.Abort, 1);
  for (const index of [Ctl.CommandGen, Ctl.BarrierGen, Ctl.Ready]) {
    Atomics.add(ctl, index, 1);
    Atomics.notify(ctl, index);
  }
}

/**
 * Test-only: the coordinator writes a fault plan (LOCKSTEP_TEST_FAULT=thread:step[:exit]) into the control
 * block, and the named thread throws (or exits) once phase 1 of that step has begun elsewhere. Thread 0 is
 * the coordinator, so the tests also cover a run whose own thread fails in the middle of a step.
 */
export function injectTestFault(ctl: Int32Array, thread: number): void {
  if (Atomics.load(ctl, Ctl.FaultThread) !== thread + 1) return;
  const step = Atomics.load(ctl, Ctl.StepCount);
  if (step !== Atomics.load(ctl, Ctl.FaultStep)) return;
  if (Atomics.load(ctl, Ctl.FaultKind) === FaultKind.Exit) process.exit(70);
  throw new Error(
    `injected fault in ${thread === 0 ? 'the coordinator (thread 0)' : `worker thread ${thread}`} at step ${step}`,
  );
}
