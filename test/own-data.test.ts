import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IDX_FILES, loadDataset } from '../src/data/dataset.js';
import { encodeIdx } from '../src/data/idx.js';
import { encodeNpy } from '../src/data/npy.js';
import { evaluate } from '../src/inference/evaluate.js';
import { predict, predictCsv } from '../src/inference/predict.js';
import { decodeCheckpoint, encodeCheckpoint } from '../src/model-io/checkpoint.js';
import { exportSafetensors } from '../src/model-io/export.js';
import { readSafetensors } from '../src/model-io/safetensors.js';
import { paramsSha256 } from '../src/model/hash.js';
import { LOG_FIELDS } from '../src/train/metrics-log.js';
import { train, type TrainSnapshot } from '../src/train/train.js';
import type { TrainOptions } from '../src/train/config.js';
import { blobsCsv, runCli, SLOW_TEST_TIMEOUT, startCli, tempDir, writeNpz } from './helpers.js';

/** A noisy three-class table: the validation loss stops improving within a few dozen epochs. */
function tableFiles(): { data: string; testData: string } {
  const dir = tempDir();
  const data = join(dir, 'train.csv');
  const testData = join(dir, 'test.csv');
  writeFileSync(data, blobsCsv(240, 11));
  writeFileSync(testData, blobsCsv(60, 12));
  return { data, testData };
}

const EARLY: TrainOptions = {
  hidden: [8],
  batchSize: 16,
  lr: 0.1,
  epochs: 80,
  valSplit: 0.25,
  earlyStop: 3,
  minDelta: 0.002,
};

describe('own data: .npz, CSV, validation, early stopping', () => {
  it(
    "MNIST as an .npz (uint8, Keras mnist.npz names) ends with the IDX run's paramsSha256",
    async () => {
      const mnist = loadDataset(undefined, { trainLimit: 1200, testLimit: 200 });
      const dir = tempDir();
      const npz = writeNpz(join(dir, 'mnist.npz'), {
        x_train: encodeNpy('|u1', [1200, 28, 28], mnist.train.images),
        y_train: encodeNpy('|u1', [1200], mnist.train.labels),
        x_test: encodeNpy('|u1', [200, 28, 28], mnist.test.images),
        y_test: encodeNpy('|u1', [200], mnist.test.labels),
      });
      const idxDir = tempDir();
      writeFileSync(join(idxDir, IDX_FILES.trainImages), encodeIdx([1200, 28, 28], mnist.train.images));
      writeFileSync(join(idxDir, IDX_FILES.trainLabels), encodeIdx([1200], mnist.train.labels));
      writeFileSync(join(idxDir, IDX_FILES.testImages), encodeIdx([200, 28, 28], mnist.test.images));
      writeFileSync(join(idxDir, IDX_FILES.testLabels), encodeIdx([200], mnist.test.labels));
      const fromIdx = await train({ data: idxDir, epochs: 1, threads: 2 });
      const fromNpz = await train({ data: npz, epochs: 1, threads: 2 });
      expect(fromNpz.layout.layers).toEqual([784, 128, 64, 10]);
      expect(fromNpz.input.scaling.kind).toBe('255');
      expect(fromNpz.paramsSha256).toBe(fromIdx.paramsSha256);
      // --scale standard on the same bytes is another run, with the same result from the reference trainer.
      const standard = await train({ data: npz, epochs: 1, threads: 3, scale: 'standard', maxSteps: 6 });
      const standardRef = await train({
        data: npz,
        epochs: 1,
        reference: true,
        threads: 1,
        scale: 'standard',
        maxSteps: 6,
      });
      expect(standard.paramsSha256).not.toBe(fromIdx.paramsSha256);
      expect(standard.paramsSha256).toBe(standardRef.paramsSha256);
      // predict --index applies the model's scaling as eval does: the same examples are right.
      const evaluation = await evaluate(standard, { testLimit: 40, threads: 1 });
      let correct = 0;
      for (let i = 0; i < 40; i++) {
        const p = predict(standard, { index: i });
        if (p.predicted === p.label) correct++;
      }
      expect(correct / 40).toBe(evaluation.accuracy);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'stops early at the same epoch with the same best weights on the reference trainer and 1, 2, 3 threads, and across a resume',
    async () => {
      const files = tableFiles();
      const bests: string[] = [];
      const run = async (options: TrainOptions) => {
        let best = '';
        const result = await train(
          { ...files, ...EARLY, ...options },
          { onBest: (s) => void (best = paramsSha256(s.params)) },
        );
        bests.push(best);
        return {
          hash: result.paramsSha256,
          stopped: result.state.stoppedEarly,
          best: result.state.best,
          bestHash: best,
          history: result.history,
        };
      };
      const reference = await run({ reference: true, threads: 1 });
      expect(reference.stopped).toBeDefined();
      expect(reference.stopped).toBeLessThan(EARLY.epochs!);
      expect(reference.stopped! - reference.best!.epoch).toBe(EARLY.earlyStop);
      expect(reference.history.at(-1)!.epoch).toBe(reference.stopped);
      // The best epoch's weights are the ones hashed at the end of that epoch.
      expect(reference.bestHash).toBe(reference.history[reference.best!.epoch - 1].paramsSha256);
      for (const threads of [1, 2, 3]) {
        const engine = await run({ threads });
        expect({ ...engine, history: undefined }).toEqual({ ...reference, history: undefined });
        expect(engine.history.map((h) => [h.valLoss, h.valAccuracy, h.testLoss, h.trainLoss])).toEqual(
          reference.history.map((h) => [h.valLoss, h.valAccuracy, h.testLoss, h.trainLoss]),
        );
      }

      // Stopped after epoch 2 (a checkpoint through its bytes), resumed at another thread count: the same end.
      let saved: TrainSnapshot | null = null;
      let firstBest = '';
      await train(
        { ...files, ...EARLY, threads: 2, epochs: 2 },
        {
          onCheckpoint: (s) => void (saved = s),
          onBest: (s) => void (firstBest = paramsSha256(s.params)),
        },
      );
      const checkpoint = decodeCheckpoint(encodeCheckpoint(saved!), 'mem.ckpt');
      expect(checkpoint.state.best?.epoch).toBeGreaterThanOrEqual(1);
      expect(checkpoint.input.classNames).toEqual(['alpha', 'beta', 'gamma']);
      let resumedBest = firstBest;
      const resumed = await train(
        { ...checkpoint.config, threads: 3, epochs: EARLY.epochs },
        {
          resume: { params: checkpoint.params, state: checkpoint.state, dataSha256: checkpoint.dataSha256 },
          onBest: (s) => void (resumedBest = paramsSha256(s.params)),
        },
      );
      expect(resumed.paramsSha256).toBe(reference.hash);
      expect(resumed.state.stoppedEarly).toBe(reference.stopped);
      expect(resumed.state.best).toEqual(reference.best);
      expect(resumedBest).toBe(reference.bestHash);
      // A resume of the stopped run trains nothing more.
      const again = await train(
        { ...checkpoint.config, threads: 1, epochs: EARLY.epochs },
        {
          resume: { params: resumed.params, state: resumed.state, dataSha256: checkpoint.dataSha256 },
        },
      );
      expect(again.steps).toBe(resumed.steps);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '--eval-every and --no-train-eval change no weight; --hidden sizes the network from the data',
    async () => {
      const files = tableFiles();
      const base: TrainOptions = { ...files, hidden: [8, 5], batchSize: 16, lr: 0.1, epochs: 5, threads: 2 };
      const full = await train(base);
      const cheap = await train({ ...base, evalEvery: 2, trainEval: false });
      expect(full.layout.layers).toEqual([4, 8, 5, 3]);
      expect(cheap.paramsSha256).toBe(full.paramsSha256);
      expect(cheap.history.map((h) => Number.isNaN(h.testAccuracy))).toEqual([true, false, true, false, false]);
      expect(cheap.history.every((h) => Number.isNaN(h.trainAccuracy))).toBe(true);
      expect(cheap.history[4].testAccuracy).toBe(full.history[4].testAccuracy);
      await expect(train({ ...files, layers: [5, 8, 3], epochs: 1 })).rejects.toThrow(
        /train\.csv: rows of 4 inputs, but the first layer has 5 \(--layers\)/,
      );
      await expect(train({ ...files, layers: [4, 8, 2], epochs: 1 })).rejects.toThrow(
        /train\.csv: label 2 \("gamma"\) at index \d+ is out of range for 2 output classes \(--layers\)/,
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'stores the scaling and class names with the model: eval, predict and safetensors apply the same transform',
    async () => {
      const files = tableFiles();
      const result = await train({ ...files, hidden: [8], batchSize: 16, lr: 0.1, epochs: 3, threads: 2 });
      expect(result.input.scaling.kind).toBe('standard');
      const evaluation = await evaluate(result, { threads: 1 });
      expect(evaluation.accuracy).toBe(result.testAccuracy);
      expect(evaluation.classNames).toEqual(['alpha', 'beta', 'gamma']);
      const path = join(tempDir(), 'model.safetensors');
      exportSafetensors(result, path);
      const { metadata } = readSafetensors(path);
      expect(JSON.parse(metadata.class_names)).toEqual(['alpha', 'beta', 'gamma']);
      expect(metadata.input_scale).toBe('standard');
      expect(JSON.parse(metadata.input_offset)).toEqual(result.input.scaling.offset);
      const fromFile = await evaluate(path, { data: files.testData, threads: 2 });
      expect(fromFile.accuracy).toBe(result.testAccuracy);
      const rows = predictCsv(path, files.testData);
      expect(rows).toHaveLength(60);
      const correct = rows.filter((r) => r.className === r.label).length;
      expect(correct / 60).toBe(result.testAccuracy);
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('the CLI on a CSV table with string labels', () => {
  it(
    "--eval-every prints only the evaluated epochs' lines (--json every epoch); --quiet prints the Done line only, same weights",
    () => {
      const { data, testData } = tableFiles();
      const args = [
        'train',
        '--data',
        data,
        '--test-data',
        testData,
        '--hidden',
        '8',
        '--batch-size',
        '16',
        '--lr',
        '0.1',
        '--epochs',
        '7',
        '--threads',
        '1',
      ];
      const epochsOf = (stdout: string) => [...stdout.matchAll(/^Epoch (\d+):/gm)].map((m) => Number(m[1]));
      const every = runCli([...args, '--eval-every', '3']);
      expect(every.code, every.stderr).toBe(0);
      expect(epochsOf(every.stdout)).toEqual([3, 6, 7]);
      const json = runCli([...args, '--eval-every', '3', '--json']);
      const events = json.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(events.filter((e) => e.event === 'epoch').map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      const quiet = runCli([...args, '--quiet']);
      expect(quiet.code, quiet.stderr).toBe(0);
      expect(quiet.stdout).toMatch(/^Done: 7 epochs, [^\n]*\n$/);
      const quietJson = runCli([...args, '--quiet', '--json']);
      const only = quietJson.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(only).toHaveLength(1);
      expect(only[0].paramsSha256).toBe(events.at(-1).paramsSha256);
      expect(quiet.stdout).toContain(only[0].paramsSha256);
    },
    SLOW_TEST_TIMEOUT,
  );

  it("refuses --log or --save-best naming another flag's file (the data, the checkpoint) before training, leaving it as it was", () => {
    const { data } = tableFiles();
    const before = readFileSync(data);
    const log = runCli(['train', '--data', data, '--log', data, '--force', '--epochs', '1']);
    expect(log.code).toBe(2);
    expect(log.stderr).toBe(`lockstep: --log ${data}: is also --data's file; name another file\n`);
    expect(readFileSync(data).equals(before)).toBe(true);
    const best = runCli(
      [
        'train',
        '--data',
        data,
        '--val-split',
        '0.2',
        '--checkpoint',
        'same.st',
        '--save-best',
        'same.st',
        '--epochs',
        '1',
      ],
      { cwd: dirname(data) },
    );
    expect(best.code).toBe(2);
    expect(best.stderr).toBe("lockstep: --save-best same.st: is also --checkpoint's file; name another file\n");
    expect(existsSync(join(dirname(data), 'same.st'))).toBe(false);
    // Each is refused by its name alone, as given, before anything is read
    const named = (flag: string, file: string) =>
      runCli(['train', '--data', data, '--val-split', '0.2', flag, file, '--epochs', '1'], { cwd: dirname(data) });
    expect(named('--save-best', 'best.txt').stderr).toBe(
      'lockstep: --save-best best.txt: writes safetensors; name a .safetensors (or .st) file\n',
    );
    expect(named('--log', 'run.txt').stderr).toBe('lockstep: --log run.txt: must end in .csv or .jsonl\n');
    expect(readdirSync(dirname(data)).filter((f) => /^(best|run)\./.test(f))).toEqual([]);
  });

  it('--batch-size above the training rows takes them all in each step, with a notice naming both flags: the weights of --batch-size ROWS', () => {
    const { data } = tableFiles();
    const args = ['train', '--data', data, '--val-split', '0.99', '--epochs', '2', '--threads', '1', '--json'];
    const split = runCli([...args, '--batch-size', '64']);
    expect(split.code, split.stderr).toBe(0);
    expect(split.stderr).toContain(
      'lockstep: notice: --batch-size 64: larger than the 2 training examples that --val-split 0.99 leaves to train on; each step uses all 2\n',
    );
    const exact = runCli([...args, '--batch-size', '2']);
    expect(exact.code, exact.stderr).toBe(0);
    expect(exact.stderr).not.toContain('--batch-size');
    const done = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);
    expect(done(split.stdout).steps).toBe(2);
    expect(done(split.stdout).paramsSha256).toBe(done(exact.stdout).paramsSha256);
  });

  it(
    'trains, early-stops, keeps the best weights and logs every epoch; eval and predict --csv show class names',
    () => {
      const { data, testData } = tableFiles();
      const dir = tempDir();
      const args = [
        'train',
        '--data',
        data,
        '--test-data',
        testData,
        '--hidden',
        '8',
        '--batch-size',
        '16',
        '--lr',
        '0.1',
        '--epochs',
        '80',
        '--val-split',
        '0.25',
        '--early-stop',
        '3',
        '--min-delta',
        '0.002',
        '--save-best',
        'best.st',
        '--log',
        'log.csv',
        '--threads',
        '2',
      ];
      const r = runCli(args, { cwd: dir });
      expect(r.stderr).toMatch(
        /^lockstep: early stop after epoch (\d+): no validation loss better than [\d.]+ \(epoch (\d+)\) for 3 epochs; its weights are in best\.st\n$/,
      );
      expect(r.code).toBe(0);
      const [, stopped, best] = /early stop after epoch (\d+).*\(epoch (\d+)\)/.exec(r.stderr)!.map(Number);
      const log = readFileSync(join(dir, 'log.csv'), 'utf8').trim().split('\n');
      expect(log[0]).toBe(LOG_FIELDS.join(','));
      expect(log).toHaveLength(stopped + 1);
      const rows = log.slice(1).map((line) => Object.fromEntries(line.split(',').map((v, i) => [LOG_FIELDS[i], v])));
      expect(rows.map((row) => Number(row.epoch))).toEqual(Array.from({ length: stopped }, (_, i) => i + 1));
      expect(rows.at(-1)!.paramsSha256).toBe(/params sha256 (\w+)/.exec(r.stdout)![1]);
      expect(Number(rows[0].valAccuracy)).toBeGreaterThan(0);
      // The best model's metadata is its own epoch's: the epochs and steps it had trained, and its test accuracy.
      const { metadata } = readSafetensors(join(dir, 'best.st'));
      expect({ epochs: metadata.epochs, steps: metadata.steps, test: Number(metadata.test_acc) }).toEqual({
        epochs: String(best),
        steps: rows[best - 1].steps,
        test: Number(rows[best - 1].testAccuracy),
      });

      // The same run again is refused: the log and the best model are not replaced without --force.
      const refused = runCli(args, { cwd: dir });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^lockstep: --log log\.csv: exists; pass --force to replace it\n$/);

      const evaluation = runCli(['eval', 'best.st', '--data', testData, '--threads', '1'], { cwd: dir });
      expect(evaluation.code).toBe(0);
      expect(evaluation.stdout).toMatch(/^\s+0(\s+\d+){3}\s+alpha$/m);
      expect(evaluation.stdout).toMatch(/^\s+2(\s+\d+){3}\s+gamma$/m);
      expect(Number(/mean loss ([\d.]+)/.exec(evaluation.stdout)![1])).toBeCloseTo(Number(rows[best - 1].testLoss), 4);
      // Columns are read by name: the same rows in another column order evaluate the same; renamed, refused.
      const [header, ...body] = readFileSync(testData, 'utf8').trim().split('\n');
      const order = [4, 3, 1, 0, 2];
      const reorder = (line: string) => order.map((i) => line.split(',')[i]).join(',');
      writeFileSync(join(dir, 'reordered.csv'), `${[header, ...body].map(reorder).join('\n')}\n`);
      const reordered = runCli(['eval', 'best.st', '--data', 'reordered.csv', '--threads', '1'], { cwd: dir });
      expect({ code: reordered.code, stdout: reordered.stdout }).toEqual({ code: 0, stdout: evaluation.stdout });
      writeFileSync(join(dir, 'renamed.csv'), `x0,x1,x2,x3,species\n${body.join('\n')}\n`);
      const renamed = runCli(['eval', 'best.st', '--data', 'renamed.csv', '--threads', '1'], { cwd: dir });
      expect({ code: renamed.code, stderr: renamed.stderr }).toEqual({
        code: 2,
        stderr: 'lockstep: --data renamed.csv: no column "f0", a feature of the model (its features: f0, f1, f2, f3)\n',
      });
      const predicted = runCli(['predict', 'best.st', '--csv', testData], { cwd: dir });
      expect(predicted.code).toBe(0);
      expect(predicted.stderr).toBe('');
      const lines = predicted.stdout.trim().split('\n');
      expect(lines).toHaveLength(60);
      // Rows far outside the training rows and labels that name no class: predicted, with one notice each for the file.
      const [f0, f1, f2, f3] = body[0].split(',');
      writeFileSync(
        join(dir, 'odd.csv'),
        `${header}\n${body[0]}\n${f0},${f1},${f2},-4000,beta\n${f0},900.1,${f2},${f3},delta\n`,
      );
      const odd = runCli(['predict', 'best.st', '--csv', 'odd.csv'], { cwd: dir });
      expect(odd.code).toBe(0);
      expect(odd.stdout.trim().split('\n')).toHaveLength(3);
      expect(odd.stderr.split('\n')).toEqual([
        expect.stringMatching(
          /^lockstep: notice: --csv odd\.csv: 2 of 3 rows are unlike the training data \(the first: line 3, column "f3" is -4000, \d+(\.\d+)? standard deviations from the training rows' mean 3\d(\.\d+)?\); the model's answers for them mean little$/,
        ),
        `lockstep: notice: --csv odd.csv: 1 of 3 rows has a label that is none of the model's classes (alpha, beta, gamma); the first: line 4, "delta"`,
        '',
      ]);
      expect(lines[0]).toMatch(
        /^line 2: (alpha|beta|gamma) \(p [\d.]+\)( \(correct\)| \(true label (alpha|beta|gamma)\))$/,
      );
      // The model keeps its label column's name: a column that is neither it nor a feature is refused, not read as labels.
      const withId = (columns: string) => {
        const table = body.map(
          (line, r) =>
            `${line.split(',').slice(0, 4).join(',')},${r}${columns.includes('species') ? `,${line.split(',')[4]}` : ''}`,
        );
        writeFileSync(
          join(dir, 'with-id.csv'),
          `${header.split(',').slice(0, 4).join(',')},${columns}\n${table.join('\n')}\n`,
        );
        return runCli(['predict', 'best.st', '--csv', 'with-id.csv'], { cwd: dir });
      };
      for (const columns of ['id', 'id,species'])
        expect(withId(columns)).toMatchObject({
          code: 2,
          stderr:
            'lockstep: --csv with-id.csv: column "id" is neither a feature of the model nor its label column "species"; remove it\n',
        });
      const json = runCli(['predict', 'best.st', '--csv', testData, '--json'], { cwd: dir });
      const first = JSON.parse(json.stdout.split('\n')[0]) as {
        line: number;
        className: string;
        probabilities: number[];
        predicted: number;
      };
      expect(first).toMatchObject({ event: 'predict', line: 2, className: /^line 2: (\w+)/.exec(lines[0])![1] });
      expect(first.probabilities).toHaveLength(3);
      for (const flag of ['--index', '--image']) {
        const index = runCli(['predict', 'best.st', flag, flag === '--image' ? testData : '3'], { cwd: dir });
        expect(index.code).toBe(2);
        expect(index.stderr).toBe(
          `lockstep: ${flag}: best.st reads rows of numbers, not images; classify a table's rows with --csv ROWS.csv\n`,
        );
      }

      const jsonl = runCli(
        [
          'train',
          '--data',
          data,
          '--hidden',
          '8',
          '--epochs',
          '2',
          '--log',
          'log.jsonl',
          '--no-train-eval',
          '--threads',
          '1',
        ],
        { cwd: dir },
      );
      expect(jsonl.code).toBe(0);
      const objects = readFileSync(join(dir, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(objects).toHaveLength(2);
      expect(Object.keys(objects[0])).toEqual([...LOG_FIELDS]);
      expect(objects[0].trainAccuracy).toBeNull();
      expect(objects[0].valLoss).toBeNull();
      expect(objects[0].testLoss).toBeNull();
      expect(objects[1].steps).toBe(2 * Math.ceil(240 / 64));
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'a run without a test split ends naming the accuracy it has: validation, else training',
    () => {
      const { data } = tableFiles();
      const common = [
        'train',
        '--data',
        data,
        '--hidden',
        '8',
        '--lr',
        '0.1',
        '--batch-size',
        '16',
        '--epochs',
        '2',
        '--threads',
        '1',
      ];
      const plain = runCli(common);
      expect(plain.code).toBe(0);
      const trainAccuracy = /^Epoch 2: train acc ([\d.]+),/m.exec(plain.stdout)![1];
      expect(plain.stdout).toMatch(
        new RegExp(`^Done: 2 epochs, \\d+ steps, no test split, train acc ${trainAccuracy}, `, 'm'),
      );
      const validated = runCli([...common, '--val-split', '0.25']);
      expect(validated.code).toBe(0);
      const valAccuracy = /^Epoch 2: .*val acc ([\d.]+),/m.exec(validated.stdout)![1];
      expect(validated.stdout).toMatch(
        new RegExp(`^Done: 2 epochs, \\d+ steps, no test split, val acc ${valAccuracy}, `, 'm'),
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'a resumed run goes on keeping --save-best without naming it again; a checkpoint without it says no best weights are kept',
    () => {
      const { data } = tableFiles();
      const dir = tempDir();
      const common = ['--hidden', '8', '--lr', '0.1', '--batch-size', '16', '--val-split', '0.25', '--threads', '1'];
      const valLoss = (stdout: string) => (JSON.parse(stdout.split('\n')[0]) as { valLoss: number }).valLoss;
      const first = runCli(
        [
          'train',
          '--data',
          data,
          ...common,
          '--epochs',
          '1',
          '--save-best',
          'best.st',
          '--checkpoint',
          'run.ckpt',
          '--json',
        ],
        { cwd: dir },
      );
      expect(first.code).toBe(0);
      const firstBest = readFileSync(join(dir, 'best.st'));
      const resumed = runCli(['train', '--resume', 'run.ckpt', '--epochs', '2', '--json'], { cwd: dir });
      expect(resumed.code).toBe(0);
      expect(resumed.stderr).toBe(
        `lockstep: notice: --save-best ${join(dir, 'best.st')}: continued from run.ckpt (give --save-best FILE to write elsewhere)\n`,
      );
      // Epoch 2's weights replace epoch 1's exactly when its validation loss is lower.
      expect(readFileSync(join(dir, 'best.st')).equals(firstBest)).toBe(
        !(valLoss(resumed.stdout) < valLoss(first.stdout)),
      );
      const plain = runCli(['train', '--data', data, ...common, '--epochs', '1', '--checkpoint', 'plain.ckpt'], {
        cwd: dir,
      });
      expect(plain.code).toBe(0);
      const again = runCli(['train', '--resume', 'plain.ckpt', '--epochs', '2'], { cwd: dir });
      expect(again.code).toBe(0);
      expect(again.stderr).toBe(
        'lockstep: notice: no --save-best: this resumed run keeps no best weights (give --save-best FILE to keep them)\n',
      );
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'resuming a run that stopped early says only that there is nothing to train',
    () => {
      const { data } = tableFiles();
      const dir = tempDir();
      // A --min-delta no loss can beat: the run stops after its second epoch.
      const first = runCli(
        [
          'train',
          '--data',
          data,
          '--hidden',
          '8',
          '--batch-size',
          '16',
          '--val-split',
          '0.25',
          '--early-stop',
          '1',
          '--min-delta',
          '10',
          '--epochs',
          '20',
          '--threads',
          '1',
          '--checkpoint',
          'run.ckpt',
        ],
        { cwd: dir },
      );
      expect(first.code).toBe(0);
      expect(first.stderr).toMatch(/^lockstep: early stop after epoch 2: /);
      const again = runCli(['train', '--resume', 'run.ckpt', '--epochs', '30'], { cwd: dir });
      expect({ code: again.code, stderr: again.stderr }).toEqual({
        code: 0,
        stderr: 'lockstep: notice: run.ckpt stopped early after epoch 2 (--early-stop): nothing to train\n',
      });
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '--log rows are on disk as each epoch ends: a killed run keeps them, and its resume appends the rest, named again or not',
    async () => {
      const { data } = tableFiles();
      const dir = tempDir();
      const args = [
        'train',
        '--data',
        data,
        '--hidden',
        '8',
        '--lr',
        '0.1',
        '--batch-size',
        '8',
        '--threads',
        '1',
        '--log',
        join(dir, 'log.csv'),
        '--checkpoint',
        join(dir, 'run.ckpt'),
      ];
      const running = startCli([...args, '--epochs', '400']);
      // Epoch 4's line is printed before its row is written: epochs 1 to 3 must be on disk.
      await running.printed(/^Epoch 4:/);
      running.child.kill('SIGKILL');
      await running.exit;
      const killed = readFileSync(join(dir, 'log.csv'), 'utf8').trim().split('\n');
      expect(killed.length).toBeGreaterThanOrEqual(4);
      // The log may hold an epoch the checkpoint does not (killed between the two): the resume trains it again, and logs it once.
      const resumed = runCli(
        ['train', '--resume', 'run.ckpt', '--log', 'log.csv', '--epochs', String(killed.length + 1)],
        { cwd: dir },
      );
      expect(resumed.code).toBe(0);
      const after = readFileSync(join(dir, 'log.csv'), 'utf8').trim().split('\n');
      expect(after.filter((line) => line.startsWith('epoch,'))).toHaveLength(1);
      expect(after.slice(1).map((line) => Number(line.split(',')[0]))).toEqual(
        Array.from({ length: after.length - 1 }, (_, i) => i + 1),
      );
      // Resumed again from another directory without --log: the checkpoint names the log, and the run goes on writing it.
      const elsewhere = runCli(['train', '--resume', join(dir, 'run.ckpt'), '--epochs', String(after.length)], {
        cwd: tempDir(),
      });
      expect(elsewhere.code).toBe(0);
      expect(elsewhere.stderr).toContain(
        `lockstep: notice: --log ${join(dir, 'log.csv')}: continued from ${join(dir, 'run.ckpt')}`,
      );
      const last = readFileSync(join(dir, 'log.csv'), 'utf8').trim().split('\n');
      expect(last).toHaveLength(after.length + 1);
      expect(last.slice(1).map((line) => Number(line.split(',')[0]))).toEqual(
        Array.from({ length: after.length }, (_, i) => i + 1),
      );
    },
    SLOW_TEST_TIMEOUT,
  );
});
