import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { evaluate } from '../src/inference/evaluate.js';
import { predict, predictCsv, predictRows } from '../src/inference/predict.js';
import { readCheckpoint, writeCheckpoint } from '../src/model-io/checkpoint.js';
import { benchmark } from '../src/experiments/bench.js';
import { sweep } from '../src/experiments/sweep.js';
import { verify } from '../src/experiments/verify.js';
import { exportModel, exportSafetensors } from '../src/model-io/export.js';
import { train } from '../src/train/train.js';
import type { TrainedModel } from '../src/model-io/model-source.js';
import { datasetFromArrays } from '../src/data/arrays.js';
import { blobsCsv, tempDir, writeIdxDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const DIST_INDEX = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href;

/** docs/library.md: each ```js block with the output block printed under it, in order. */
function libraryPageBlocks(): { code: string; output: string }[] {
  const section = readFileSync(join(ROOT, 'docs', 'library.md'), 'utf8');
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```[\s\S]*?Its output[^\n]*\n\n```\n([\s\S]*?)```/g)].map(
    (m) => ({ code: m[1], output: m[2] }),
  );
  if (blocks.length === 0) throw new Error('docs/library.md: no ```js block and output block');
  return blocks;
}

/** Runs an ES module against the built library, as a project that installed lockstep would (`from 'lockstep'`). */
function runModule(source: string, cwd: string): { code: number | null; stdout: string; stderr: string } {
  const file = join(cwd, 'example.mjs');
  writeFileSync(file, source.replaceAll("from 'lockstep'", `from '${DIST_INDEX}'`));
  const r = spawnSync(process.execPath, [file], { cwd, encoding: 'utf8', timeout: 110_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs docs/library.md's block `index` in a new folder (holding `files` first) and checks that it prints
 * exactly the page's output, nothing on stderr; returns the folder and what it printed.
 */
function runPageBlock(index: number, files: Record<string, string> = {}): { cwd: string; stdout: string } {
  const { code, output } = libraryPageBlocks()[index];
  const cwd = tempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const r = runModule(code, cwd);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(output);
  return { cwd, stdout: r.stdout };
}

/** Calls fn and returns the error it throws (sync or async), or fails the test. */
async function thrown(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('the library: train → evaluate → predict → save', { timeout: 120_000 }, () => {
  it("runs docs/library.md's example as written, and prints what the page shows", () => {
    const { cwd, stdout } = runPageBlock(0);
    // The page's numbers hang together: one accuracy from the run, the model in memory, and both files.
    const accuracies = [...stdout.matchAll(/(0\.\d{4})(?=, params|, mean| from)/g)].map((m) => m[1]);
    expect(accuracies).toHaveLength(4);
    expect(new Set(accuracies).size).toBe(1);
    expect(stdout).toMatch(/predict: test image 0 is a 7 \(p [01]\.\d{3}, label 7\)/);
    expect(existsSync(join(cwd, 'run.ckpt')) && existsSync(join(cwd, 'model.safetensors'))).toBe(true);
  });

  it("runs docs/library.md's table example as written (predictCsv), and prints what the page shows", () => {
    expect(libraryPageBlocks()).toHaveLength(5);
    const { stdout } = runPageBlock(1, { 'flowers.csv': blobsCsv(120, 31), 'new.csv': blobsCsv(3, 32) });
    expect(stdout.trim().split('\n')).toHaveLength(3);
  });

  it("runs docs/library.md's experiments example (verify, benchmark, sweep, exportModel, serveModel, UserError) and prints what the page shows", () => {
    const { cwd } = runPageBlock(2);
    expect(existsSync(join(cwd, 'model.onnx'))).toBe(true);
  });

  it("runs docs/library.md's hooks example (signal, onEpoch, onNotice, resume) and prints what the page shows", () => {
    const { cwd } = runPageBlock(3);
    expect(existsSync(join(cwd, 'small.ckpt.lock'))).toBe(false);
  });

  it("the package's API is the page's table: its functions and error classes, nothing internal", async () => {
    const api = await import(DIST_INDEX);
    const page = readFileSync(join(ROOT, 'docs', 'library.md'), 'utf8');
    const documented = [...page.matchAll(/^\| `(\w+)\(/gm)].map((m) => m[1]);
    expect(Object.keys(api).sort()).toEqual([...documented, 'DivergenceError', 'UserError', 'WorkerFailure'].sort());
    // The page's count of types is the declarations' (src/index.ts's `export type { … }` lists).
    const index = readFileSync(join(ROOT, 'src', 'index.ts'), 'utf8');
    const types = [...index.matchAll(/export type \{([^}]*)\}/g)].flatMap((m) =>
      m[1].split(',').filter((n) => n.trim()),
    );
    expect(page).toContain(
      `gives these ${Object.keys(api).length} functions and error classes and ${types.length} types`,
    );
  });

  it("predict({ index }) on a table's model in memory says what the CLI says: its rows go through predictCsv", async () => {
    const cwd = tempDir();
    const data = join(cwd, 'table.csv');
    writeFileSync(data, blobsCsv(80, 31));
    const model = await train({ data, hidden: [4], epochs: 1, threads: 1 });
    const err = await thrown(() => predict(model, { index: 0 }));
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      "--index: model in memory reads rows of numbers, not images; classify a table's rows with --csv ROWS.csv",
    );
    const rows = predictCsv(model, data);
    expect(rows).toHaveLength(80);
    expect(rows[0]).toMatchObject({ line: 2, label: expect.stringMatching(/^(alpha|beta|gamma)$/) });
    // The same rows held in memory, raw features in the model's order: the same classes and probabilities.
    const table = parse(readFileSync(data, 'utf8'), { columns: true }) as Record<string, string>[];
    const features = Object.keys(table[0]).filter((name) => name !== 'species');
    const inMemory = predictRows(
      model,
      table.map((row) => features.map((name) => Number(row[name]))),
    );
    expect(inMemory.map(({ row, ...p }) => ({ line: row + 2, ...p }))).toEqual(
      rows.map(({ label: _label, ...p }) => p),
    );
    const cases: [unknown, string][] = [
      ['rows', `predictRows: rows must be an array of rows of 4 numbers (${features.join(', ')}); got "rows"`],
      [[[1, 2, 3]], `predictRows: row 0 is [1, 2, 3]; the model takes 4 numbers (${features.join(', ')})`],
      [
        [
          [1, 2, 3, 4],
          [1, 2, Number.NaN, 4],
        ],
        'predictRows: row 1, value 2 is NaN; each value is a finite number',
      ],
      [[[1, 2, '3', 4]], 'predictRows: row 0, value 2 is "3"; each value is a finite number'],
      [[Float64Array.of(1, 2, 3, 1e39)], "predictRows: row 0, value 3 is 1e+39, beyond float32's range (±3.4e38)"],
      [
        [[3e38, -3e38, 3e38, -3e38]],
        "predictRows: row 0: its values overflow the network's float32 arithmetic, so it has no probabilities; are they in the training data's units?",
      ],
    ];
    for (const [given, message] of cases) {
      const err = await thrown(() => predictRows(model, given as never));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toBe(message);
    }
    // Rows unlike the training data are answered, and hooks.onNotice says so once for all of them.
    const notices: string[] = [];
    const near = inMemory.length;
    const far = predictRows(
      model,
      [...table.slice(0, near).map((row) => features.map((name) => Number(row[name]))), [0, 0, 0, 1e6]],
      {
        onNotice: (line) => notices.push(line),
      },
    );
    expect(far).toHaveLength(near + 1);
    expect(notices).toEqual([
      expect.stringMatching(
        new RegExp(
          `^predictRows: 1 of ${near + 1} rows is unlike the training data \\(the first: row ${near}, value 3 is 1000000, `,
        ),
      ),
    ]);
    notices.length = 0;
    predictCsv(model, data, { onNotice: (line) => notices.push(line) });
    expect(notices).toEqual([]);
    expect((await thrown(() => predictRows(model, [], { onNotice: () => {}, other: 1 } as never))).message).toBe(
      'predictRows: unknown option "other" (known: onNotice)',
    );
  });

  it('evaluate and predict take the model in memory, on its own data, and agree with the files written from it', async () => {
    const data = writeIdxDir({ trainCount: 300, testCount: 80 });
    const ckpt = join(tempDir(), 'run.ckpt');
    const result = await train(
      { layers: [16, 12, 10], epochs: 2, batchSize: 16, threads: 2, data },
      {
        onCheckpoint: (s) => writeCheckpoint(ckpt, s),
      },
    );
    // No data given: the model's run says where its data is (the 4×4 images, not MNIST).
    const inMemory = await evaluate(result, { threads: 1 });
    expect(inMemory.model).toBe('model in memory');
    expect(inMemory.count).toBe(80);
    expect(inMemory.accuracy).toBe(result.testAccuracy);
    const fromCheckpoint = await evaluate(ckpt, { threads: 2 });
    expect({ ...fromCheckpoint, model: 'model in memory' }).toEqual(inMemory);
    expect(await evaluate(readCheckpoint(ckpt), { threads: 1 })).toEqual(inMemory);
    // {params, layers} by hand, with the data named.
    const byHand = { params: result.params, layers: [16, 12, 10] };
    expect(await evaluate(byHand, { data, threads: 1 })).toEqual(inMemory);

    const safetensors = join(tempDir(), 'model.safetensors');
    const { paramsSha256 } = exportSafetensors(result, safetensors);
    expect(paramsSha256).toBe(result.paramsSha256);
    expect((await evaluate(safetensors, { data, threads: 1 })).accuracy).toBe(result.testAccuracy);

    const p = predict(result, { index: 5, split: 'train' });
    expect(predict(ckpt, { index: 5, split: 'train' })).toEqual(p);
    expect(predict(byHand, { index: 5, split: 'train', data })).toEqual(p);
    expect(p.width * p.height).toBe(16);
    // The same image's pixels held in memory: the same probabilities, bit for bit.
    expect(predictRows(result, [Array.from(p.pixels)])).toEqual([
      { row: 0, predicted: p.predicted, probabilities: p.probabilities },
    ]);
  });

  it('train() owns the run files: interrupted with a checkpoint, resumed without the CLI, it ends with the uninterrupted hash', async () => {
    const data = writeIdxDir({ trainCount: 300, testCount: 80 });
    const dir = tempDir();
    const settings = {
      layers: [16, 12, 10],
      epochs: 3,
      batchSize: 16,
      threads: 2,
      data,
      optimizer: 'adam' as const,
      valSplit: 0.2,
    };
    const whole = await train(settings);
    const checkpoint = join(dir, 'run.ckpt');
    const log = join(dir, 'metrics.csv');
    const stop = new AbortController();
    const first = await train(
      { ...settings, checkpoint, log },
      { signal: stop.signal, onStep: ({ steps }) => steps === 20 && stop.abort() },
    );
    expect(first.interrupted).toBe(true);
    expect(first.steps).toBe(20);
    // Another run may not take the checkpoint, nor change what defines the run's arithmetic.
    expect((await thrown(() => train({ ...settings, checkpoint, seed: 1 }))).message).toMatch(
      /^--checkpoint .*: holds the checkpoint of another run/,
    );
    expect(await thrown(() => train({ ...settings, resume: checkpoint, lr: 0.1 }))).toBeInstanceOf(UserError);
    const notices: string[] = [];
    const resumed = await train({ resume: checkpoint, threads: 1 }, { onNotice: (line) => notices.push(line) });
    expect(resumed.interrupted).toBe(false);
    expect(resumed.paramsSha256).toBe(whole.paramsSha256);
    // The checkpoint's log goes on, said once; the resumed run's rows follow the first run's.
    expect(notices).toContain(`--log ${log}: continued from ${checkpoint} (give --log FILE to write elsewhere)`);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1 + 3);
    expect(readCheckpoint(checkpoint).state.steps).toBe(resumed.steps);
  });

  it('two runs in one process may not write one checkpoint: the second is refused while the first holds it', async () => {
    const data = writeIdxDir({ trainCount: 300, testCount: 80 });
    const checkpoint = join(tempDir(), 'run.ckpt');
    const settings = { layers: [16, 12, 10], epochs: 2, batchSize: 16, threads: 1, data, checkpoint };
    let second: Error | undefined;
    const first = await train(settings, {
      onStart: async () => {
        second = await thrown(() => train({ ...settings, seed: 1, force: true }));
      },
    });
    expect(second?.message).toBe(
      `--checkpoint ${checkpoint}: another run in this process is writing it; wait for that run to end, or name another file`,
    );
    expect(readCheckpoint(checkpoint).state.steps).toBe(first.steps);
    // Released at the end: the same file may be taken again.
    expect((await train({ ...settings, seed: 1, force: true })).interrupted).toBe(false);
    expect(existsSync(`${checkpoint}.lock`)).toBe(false);
  });

  it('a bad argument is a UserError with a one-line message that says what was expected', async () => {
    const model = { params: new Float32Array(16 * 10 + 10), layers: [16, 10] };
    const cases: [() => unknown, string][] = [
      [
        () => evaluate(42 as never),
        'evaluate: expected a model file path, or a trained model in memory (what train() returns, or {params: Float32Array, layers: number[]}); got 42',
      ],
      [
        () => evaluate({} as never),
        'evaluate: expected a model file path, or a trained model in memory (what train() returns, or {params: Float32Array, layers: number[]}); got an object with keys (none)',
      ],
      [
        () => predict(null as never),
        'predict: expected a model file path, or a trained model in memory (what train() returns, or {params: Float32Array, layers: number[]}); got null',
      ],
      [
        () => evaluate({ params: [1, 2, 3], layers: [2, 1] } as never),
        "evaluate: the model's params must be a Float32Array; got [1, 2, 3]",
      ],
      [
        () => predict({ params: new Float32Array(3) } as never),
        "predict: the model's layers must be 2 or more positive integers (layers: [784, 128, 64, 10], or the layout train() returns); got undefined",
      ],
      [
        () => predict({ ...model, layers: [16, 9] }),
        "predict: the model's params hold 170 floats, but layers 16-9 need 153",
      ],
      [
        () => evaluate(model, 'test' as never),
        'evaluate: options must be an object ({data, labels, dataset, split, threads, kernels, testLimit, trainLimit}); got "test"',
      ],
      [
        () => evaluate(model, { thread: 2 } as never),
        'evaluate: unknown option "thread" (known: data, labels, dataset, split, threads, kernels, testLimit, trainLimit)',
      ],
      [() => predict(model, { image: 7 } as never), 'predict: image must be a file path; got 7'],
      [() => evaluate(model, { split: 'validation' } as never), '--split validation: must be train or test'],
      [() => evaluate(model, { testLimit: -1 }), '--test-limit -1: must be a positive integer'],
      [() => exportSafetensors(model, 42 as never), 'exportSafetensors: the output must be a file path; got 42'],
      [
        () => train({ reference: true, threads: 2, maxSteps: 1 }),
        '--reference and --threads 2: the reference trainer runs on one thread; drop one of them',
      ],
      // Plain JavaScript's mistakes: each said, none a TypeError nor a run that never ends.
      [() => train(null as never), 'train: options must be an object; got null'],
      [() => train('epochs=1' as never), 'train: options must be an object; got "epochs=1"'],
      [() => train({ lr: '0.1' as never }), '--lr "0.1": must be a number'],
      [() => train({ layers: '784,32,10' as never }), '--layers "784,32,10": must be an array, e.g. [784,128,64,10]'],
      [() => train({ init: model as never }), '--init an object with keys params, layers: must be a file path'],
      [
        () => train({ epochs: 1 }, { onEpochs: () => {} } as never),
        'train: hooks: unknown option "onEpochs" (known: onEpoch, onStep, onCheckpoint, onBest, onStart, onNotice, onCalibrated, signal, dataset, initialParams, resume, profileSteps)',
      ],
      [() => verify({ threadCounts: [1, 2], trainLimit: 200 } as never), '--steps not set: must be a positive integer'],
      [() => verify({ steps: 5 } as never), '--threads not set: must be a list of positive integers, e.g. [1,2,4]'],
      [() => verify({ threadCounts: [], steps: 5 }), '--threads []: must be a list of positive integers, e.g. [1,2,4]'],
      [() => (verify as (o?: unknown) => unknown)(), 'verify: options must be an object; got undefined'],
      [
        () => sweep({ base: {}, threads: 1, parallel: 1 } as never),
        'sweep: grid: options must be an object ({seed, lr, batchSize, optimizer}); got undefined',
      ],
      [() => verify({ threadCounts: [1, 0], steps: 5 }), '--threads 0: must be a positive integer'],
      [
        () => benchmark({ threadCounts: [1], steps: 5 } as never),
        '--batch-size not set: must be a list of positive integers, e.g. [64,256]',
      ],
      [
        () => sweep({ base: {}, grid: { seeds: [1] } as never, threads: 1, parallel: 1 }),
        'sweep: grid: unknown option "seeds" (known: seed, lr, batchSize, optimizer)',
      ],
      [
        () => sweep({ base: {}, grid: { seed: 3 as never }, threads: 1, parallel: 1 }),
        'sweep: grid.seed must be an array of one value or more; got 3',
      ],
      [
        () => exportModel(model, join(tempDir(), 'm.st'), { forse: true } as never),
        'exportModel: unknown option "forse" (known: force, names)',
      ],
    ];
    for (const [call, message] of cases) {
      const err = await thrown(call);
      expect(err, message).toBeInstanceOf(UserError);
      expect(err.message).toBe(message);
    }
  });

  it('from plain JavaScript against the build, the error is a UserError too, not "[object Object]: cannot read model"', () => {
    const r = runModule(
      `import { evaluate, UserError } from 'lockstep';
       try { await evaluate({ model: 'run.ckpt' }); } catch (err) { console.log(err instanceof UserError, err.name, err.message); }`,
      tempDir(),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'true UserError evaluate: expected a model file path, or a trained model in memory (what train() returns, or {params: Float32Array, layers: number[]}); got an object with keys model\n',
    );
  });
});

describe("the library refuses what the CLI refuses, and a hook's error ends the run", { timeout: 120_000 }, () => {
  const tiny = { trainLimit: 300, testLimit: 50, epochs: 1, threads: 2 };

  it('an async onEpoch or onStep that throws rejects train() with its error (the process goes on)', async () => {
    for (const hooks of [
      { onEpoch: async () => Promise.reject(new Error('epoch hook')) },
      { onStep: async () => Promise.reject(new Error('step hook')) },
    ]) {
      const err = await thrown(() => train(tiny, hooks));
      expect(err.message).toMatch(/^(epoch|step) hook$/);
    }
    // An async hook is waited for: the epoch's report reaches it before train() returns.
    const seen: number[] = [];
    await train(tiny, {
      onEpoch: async (r) => {
        await new Promise((done) => setTimeout(done, 20));
        seen.push(r.epoch);
      },
    });
    expect(seen).toEqual([1]);
  });

  it("threads 'auto' hears the signal while it times the thread counts: no count is chosen and no step taken", async () => {
    const stop = new AbortController();
    stop.abort();
    const calibrated: unknown[] = [];
    const result = await train(
      { ...tiny, threads: 'auto', hidden: [256, 256] },
      { signal: stop.signal, onCalibrated: (c) => calibrated.push(c) },
    );
    expect(calibrated).toEqual([]);
    expect({ steps: result.steps, interrupted: result.interrupted, threads: result.threads }).toEqual({
      steps: 0,
      interrupted: true,
      threads: 1,
    });
  });

  it('a model in memory without its layer sizes is a type error (npm run typecheck checks the directive)', () => {
    // @ts-expect-error neither layout nor layers: TypeScript refuses it before evaluate() would
    const sizeless: TrainedModel = { params: new Float32Array(10) };
    const sized: TrainedModel[] = [
      { params: new Float32Array(10), layers: [9, 1] },
      { params: new Float32Array(10), layout: { layers: [9, 1] } },
    ];
    expect([sizeless, ...sized].map((m) => m.params.length)).toEqual([10, 10, 10]);
  });

  it("verify's and benchmark's onStart is awaited: its rejection is the call's", async () => {
    const boom = async () => Promise.reject(new Error('onStart said no'));
    for (const call of [
      () => verify({ trainLimit: 300, steps: 2, threadCounts: [1], onStart: boom }),
      () =>
        benchmark({
          trainLimit: 300,
          steps: 2,
          warmup: 1,
          repeats: 1,
          threadCounts: [1],
          batchSizes: [16],
          onStart: boom,
        }),
    ])
      expect((await thrown(call)).message).toBe('onStart said no');
    expect(
      (await thrown(() => verify({ trainLimit: 300, steps: 2, threadCounts: [1], onStart: 1 } as never))).message,
    ).toBe('verify: onStart must be a function; got 1');
  });

  it('refuses hooks of the wrong kind and initial parameters that do not fit, before training', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ onEpoch: 5 }, 'train: hooks.onEpoch must be a function; got 5'],
      [{ signal: {} }, 'train: hooks.signal must be an AbortSignal; got an object with keys (none)'],
      [
        { dataset: { train: 1 } },
        'train: hooks.dataset must be a Dataset (datasetFromArrays makes one); got an object with keys train',
      ],
      [{ initialParams: [1, 2] }, 'train: hooks.initialParams must be a Float32Array; got [1, 2]'],
      [
        { initialParams: new Float32Array(5) },
        'train: hooks.initialParams hold 5 floats, but layers 784-128-64-10 need 109386',
      ],
      [
        { initialParams: new Float32Array(109386).fill(Number.NaN) },
        "train: hooks.initialParams: layers.0.weight[0, 0] is NaN; a model's parameters must be finite numbers",
      ],
    ];
    for (const [hooks, message] of cases) {
      const err = await thrown(() => train(tiny, hooks as never));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toBe(message);
    }
  });

  it("refuses the reference trainer with kernels, verify's and bench's options that are not theirs, and bench's batch larger than the rows", async () => {
    const cases: [() => unknown, string][] = [
      [
        () => train({ ...tiny, threads: 1, reference: true, kernels: 'wasm' }),
        '--reference and --kernels wasm: the reference trainer has its own arithmetic, no kernels; drop one of them',
      ],
      [
        () => verify({ trainLimit: 300, steps: 2, threads: [1, 2] } as never),
        'verify: threads: give threadCounts, the thread counts to compare (e.g. [1, 2, 4])',
      ],
      [
        () => verify({ trainLimit: 300, steps: 2, threadCounts: [1], checkpoint: 'x.ckpt' } as never),
        'verify: checkpoint is not an option of verify (see lockstep verify --help)',
      ],
      [
        () => benchmark({ trainLimit: 300, steps: 2, threadCounts: [1], batchSizes: [64], epochs: 3 } as never),
        'bench: epochs is not an option of bench (see lockstep bench --help)',
      ],
      [
        () => benchmark({ trainLimit: 200, steps: 2, warmup: 1, repeats: 1, threadCounts: [1], batchSizes: [500] }),
        '--batch-size 500: larger than the 200 training examples; give --batch-size 200 or less',
      ],
    ];
    for (const [call, message] of cases) {
      const err = await thrown(call);
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toBe(message);
    }
  });
});

describe('datasetFromArrays: training data held in memory', { timeout: 120_000 }, () => {
  it("runs docs/library.md's in-memory example as written, and prints what the page shows", () => {
    runPageBlock(4);
  });

  it('trains bit for bit as the same values in a CSV file, at any thread count; evaluate takes it; bad arrays are refused', async () => {
    const csv = join(tempDir(), 'table.csv');
    writeFileSync(csv, blobsCsv(120, 31));
    const rows = parse(readFileSync(csv, 'utf8'), { columns: true }) as Record<string, string>[];
    const featureNames = ['f0', 'f1', 'f2', 'f3'];
    const classNames = ['alpha', 'beta', 'gamma'];
    const x = Float64Array.from(rows.flatMap((row) => featureNames.map((f) => Number(row[f]))));
    const y = rows.map((row) => classNames.indexOf(row.species));
    const dataset = datasetFromArrays({ train: { x, y }, width: 4, classNames, featureNames });
    const settings = { hidden: [6], epochs: 3, batchSize: 16, lr: 0.1 };
    const fromFile = await train({ ...settings, data: csv, threads: 2 });
    let fromArrays = fromFile;
    for (const threads of [1, 3]) {
      fromArrays = await train({ ...settings, threads }, { dataset });
      expect(fromArrays.paramsSha256).toBe(fromFile.paramsSha256);
      expect(fromArrays.input).toMatchObject({ classNames, featureNames, scaling: fromFile.input.scaling });
    }
    // The caller's arrays are theirs: neither training nor evaluation scales them in place.
    expect(dataset.train.features?.[0]).toBe(Math.fround(x[0]));
    const evaluation = await evaluate(fromFile, { dataset, split: 'train', threads: 1 });
    expect((await thrown(() => evaluate(fromFile, { dataset }))).message).toBe(
      "evaluate: the dataset has no test rows (give split: 'train', or rows of this split)",
    );
    const fileEvaluation = await evaluate(fromFile, { data: csv, split: 'train', threads: 1 });
    expect(evaluation).toEqual({ ...fileEvaluation });
    expect((await thrown(() => evaluate(fromArrays))).message).toBe(
      'model in memory: a model of a CSV table; give the rows to evaluate with --data FILE.csv',
    );
    const unnamed = await train(
      { ...settings, epochs: 1, threads: 1 },
      { dataset: datasetFromArrays({ train: { x, y }, width: 4 }) },
    );
    expect((await thrown(() => evaluate(unnamed))).message).toBe(
      "model in memory: takes 4 inputs, not MNIST's 784; give the rows to evaluate (--data FILE, or the library's dataset: datasetFromArrays(…))",
    );
    const cases: [unknown, string][] = [
      [
        { train: { x: [1, 2], y: [0] }, width: 2 },
        'datasetFromArrays: train.x must be a Uint8Array, Float32Array or Float64Array; got [1, 2]',
      ],
      [{ train: { x, y }, width: 7 }, 'datasetFromArrays: train.x holds 480 values, not rows of 7 (width)'],
      [
        { train: { x, y: y.slice(1) }, width: 4 },
        'datasetFromArrays: train.x has 120 examples but train.y has 119 labels',
      ],
      [
        { train: { x, y: y.map((c) => c + 0.5) }, width: 4 },
        `datasetFromArrays: train.y[0] is ${y[0] + 0.5}; labels are class numbers from 0`,
      ],
      [
        { train: { x, y: y.map(() => 1) }, width: 4 },
        'datasetFromArrays: every label in train.y is 1: one class only; a classifier needs at least two',
      ],
      [
        { train: { x: x.map((v, i) => (i === 5 ? Number.NaN : v)), y }, width: 4 },
        'datasetFromArrays: train.x: example 1, value 1 is NaN, not a finite float32 number',
      ],
      [{ train: { x, y }, width: 4, classNames: ['a', 'b'] }, 'datasetFromArrays: label 2 has no class name (2 given)'],
    ];
    for (const [given, message] of cases) {
      const err = await thrown(() => datasetFromArrays(given as never));
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toBe(message);
    }
  });
});
