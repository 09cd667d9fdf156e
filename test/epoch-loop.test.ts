import { describe, expect, it } from 'vitest';
import { Rng } from '../src/random/rng.js';
import { DivergenceError } from '../src/errors.js';
import { runEpochs, startState, type EpochLoopSettings, type TrainState } from '../src/train/epoch-loop.js';
import type { EvalResult, Trainer } from '../src/model/trainer.js';

/**
 * The epoch loop driven by a trainer that computes nothing and records what it was asked: the examples of
 * every step, in order. The reference trainer and the engine share this loop, so comparing them cannot
 * catch a bug in it; these tests check its meaning directly.
 */
class RecordingTrainer implements Trainer {
  readonly params = new Float32Array(1);
  readonly order: Uint32Array;
  /** Per step: the epoch's whole order at that step, and the examples of the step. */
  readonly steps: { order: number[]; batch: number[] }[] = [];
  readonly evaluations: ('train' | 'test')[] = [];

  readonly optimizerState = new Float32Array(0);

  constructor(
    examples: number,
    private readonly lossPerRow = 1,
  ) {
    this.order = new Uint32Array(examples);
  }

  trainStep(start: number, rows: number): number {
    this.steps.push({ order: Array.from(this.order), batch: Array.from(this.order.subarray(start, start + rows)) });
    return rows * this.lossPerRow;
  }

  evaluate(split: 'train' | 'test'): EvalResult {
    this.evaluations.push(split);
    return { count: 1, correct: 1, predictions: new Uint8Array(1), lossSum: 0 };
  }

  async close(): Promise<void> {}
}

/** 23 examples at batch 5: 5 steps per epoch, the last of 3 rows. */
const EXAMPLES = 23;
const SETTINGS: EpochLoopSettings = { epochs: 4, batchSize: 5, lr: 0.5, evaluate: true };
const STEPS_PER_EPOCH = Math.ceil(EXAMPLES / SETTINGS.batchSize);
const SEED = 7;

async function record(settings: Partial<EpochLoopSettings> = {}, start: TrainState = startState(new Rng(SEED))) {
  const trainer = new RecordingTrainer(EXAMPLES);
  const outcome = await runEpochs(trainer, EXAMPLES, { ...SETTINGS, ...settings }, start);
  return { trainer, outcome };
}

/** The recorded steps, grouped by epoch. */
function epochsOf(trainer: RecordingTrainer) {
  const epochs: { order: number[]; batch: number[] }[][] = [];
  trainer.steps.forEach((step, i) => (epochs[Math.floor(i / STEPS_PER_EPOCH)] ??= []).push(step));
  return epochs;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('the epoch loop (driven by a recording trainer)', () => {
  it('draws each epoch a permutation of 0..n-1, different from the epoch before', async () => {
    const { trainer } = await record();
    const epochs = epochsOf(trainer);
    expect(epochs).toHaveLength(SETTINGS.epochs);
    const orders = epochs.map((steps) => steps[0].order);
    for (const [e, order] of orders.entries()) {
      expect(
        [...order].sort((a, b) => a - b),
        `epoch ${e + 1}`,
      ).toEqual(range(EXAMPLES));
      expect(order, `epoch ${e + 1} is shuffled`).not.toEqual(range(EXAMPLES));
      // One order for the whole epoch: the trainer's order does not change between its steps.
      for (const step of epochs[e]) expect(step.order).toEqual(order);
      if (e > 0) expect(order, `epoch ${e + 1} reuses epoch ${e}'s order`).not.toEqual(orders[e - 1]);
    }
  });

  it('uses every example exactly once per epoch, in batches of batchSize and a last batch of the remainder', async () => {
    const { trainer, outcome } = await record();
    for (const [e, steps] of epochsOf(trainer).entries()) {
      expect(
        steps.map((s) => s.batch.length),
        `epoch ${e + 1}`,
      ).toEqual([5, 5, 5, 5, 3]);
      // The batches are consecutive slices of the epoch's order, together all of it.
      expect(
        steps.flatMap((s) => s.batch),
        `epoch ${e + 1}`,
      ).toEqual(steps[0].order);
    }
    expect(outcome.state.steps).toBe(SETTINGS.epochs * STEPS_PER_EPOCH);
  });

  it('divides exactly when batchSize divides n, and takes a whole epoch as one batch when batchSize = n', async () => {
    for (const [batchSize, sizes] of [
      [1, Array(EXAMPLES).fill(1)],
      [EXAMPLES, [EXAMPLES]],
    ] as const) {
      const trainer = new RecordingTrainer(EXAMPLES);
      await runEpochs(trainer, EXAMPLES, { ...SETTINGS, epochs: 2, batchSize }, startState(new Rng(SEED)));
      const perEpoch = sizes.length;
      for (const e of [0, 1]) {
        const steps = trainer.steps.slice(e * perEpoch, (e + 1) * perEpoch);
        expect(steps.map((s) => s.batch.length)).toEqual(sizes);
        expect(steps.flatMap((s) => s.batch).sort((a, b) => a - b)).toEqual(range(EXAMPLES));
      }
      expect(trainer.steps).toHaveLength(2 * perEpoch);
    }
  });

  it('evaluates train then test once per epoch and reports the mean loss of the rows it trained on', async () => {
    const trainer = new RecordingTrainer(EXAMPLES, 0.25);
    const { history } = await runEpochs(trainer, EXAMPLES, SETTINGS, startState(new Rng(SEED)));
    expect(trainer.evaluations).toEqual(Array(SETTINGS.epochs).fill(['train', 'test']).flat());
    expect(history.map((h) => [h.epoch, h.epochSteps, h.trainLoss])).toEqual(
      range(SETTINGS.epochs).map((e) => [e + 1, STEPS_PER_EPOCH, 0.25]),
    );
  });

  it('the same seed gives the same orders; another seed other orders', async () => {
    const [a, b, c] = [await record(), await record(), await record({}, startState(new Rng(SEED + 1)))];
    expect(b.trainer.steps).toEqual(a.trainer.steps);
    expect(c.trainer.steps[0].order).not.toEqual(a.trainer.steps[0].order);
  });

  it('a run stopped by maxSteps at any step and resumed from its state sees the orders and batches of one that never stopped', async () => {
    const { trainer: whole, outcome: uninterrupted } = await record();
    const total = SETTINGS.epochs * STEPS_PER_EPOCH;
    for (let stopAt = 1; stopAt < total; stopAt++) {
      const first = await record({ maxSteps: stopAt });
      expect(first.outcome.state.steps).toBe(stopAt);
      // A fresh trainer, as after a restart: its order holds nothing of the first run's.
      const second = await record({}, first.outcome.state);
      expect([...first.trainer.steps, ...second.trainer.steps], `stopped after step ${stopAt}`).toEqual(whole.steps);
      expect(second.outcome.state).toEqual({ ...uninterrupted.state, history: expect.any(Array) });
      expect(second.outcome.history.map((h) => [h.epoch, h.epochSteps, h.trainLoss])).toEqual(
        uninterrupted.history.map((h) => [h.epoch, h.epochSteps, h.trainLoss]),
      );
    }
  });

  it('stops at a step boundary when the signal is aborted, and reports it as interrupted', async () => {
    const controller = new AbortController();
    const trainer = new RecordingTrainer(EXAMPLES);
    const step = trainer.trainStep.bind(trainer);
    trainer.trainStep = (start, rows) => {
      if (trainer.steps.length === 7) controller.abort();
      return step(start, rows);
    };
    const outcome = await runEpochs(trainer, EXAMPLES, SETTINGS, startState(new Rng(SEED)), {
      signal: controller.signal,
    });
    expect(outcome.interrupted).toBe(true);
    expect(trainer.steps).toHaveLength(8);
    expect(outcome.state).toMatchObject({ epoch: 2, stepInEpoch: 3, steps: 8 });
  });

  it('ends with a DivergenceError naming the epoch and step whose mean loss is NaN or above the limit', async () => {
    for (const lossPerRow of [NaN, 21]) {
      const trainer = new RecordingTrainer(EXAMPLES, lossPerRow);
      const run = runEpochs(trainer, EXAMPLES, SETTINGS, startState(new Rng(SEED)));
      await expect(run).rejects.toThrow(DivergenceError);
      await expect(run).rejects.toThrow(/training diverged at epoch 1, step 1 \(step 1 in all\)/);
      // At the first step no rate has acted: the advice is the inputs' scale, not --lr.
      await expect(run).rejects.toThrow(
        /before any update, so the inputs are too large for the network, whatever --lr; scale them \(--scale standard\)$/,
      );
      // The same facts as fields, for a program.
      await expect(run).rejects.toMatchObject({ exitCode: 3, at: { step: 1, epoch: 1, loss: lossPerRow } });
    }
  });
});
