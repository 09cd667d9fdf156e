import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { makeScratchDir } from '../src/fs/scratch-dir.js';
import { blobsCsv, processesWith, runCli, SLOW_TEST_TIMEOUT, startCli, tempDir } from './helpers.js';

const SMALL = ['--train-limit', '3000', '--test-limit', '200', '--epochs', '1'];

function doneHash(stdout: string): string {
  return /params sha256 ([0-9a-f]{64})/.exec(stdout)![1];
}

describe('lockstep sweep', () => {
  it(
    'runs the grid in parallel processes; each result equals the same run alone, bit for bit; the CSV parses',
    () => {
      const out = join(tempDir(), 'results.csv');
      const r = runCli(['sweep', '--seed', '0..2', '--lr', '0.1,0.5', '--parallel', '2', ...SMALL, '--out', out], {
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('lockstep sweep: 6 runs, 2 at a time, 1 thread each; results in');
      expect(r.stdout).toMatch(
        /^ {2}run {3}seed {2}optimizer {8}lr {2}batch {2}test acc {2}test loss {2}train loss {2}seconds {2}paramsSha256$/m,
      );
      const rows = parse(readFileSync(out, 'utf8'), { columns: true, cast: true }) as Record<string, string | number>[];
      expect(Object.keys(rows[0])).toEqual([
        'run',
        'seed',
        'lr',
        'batchSize',
        'optimizer',
        'status',
        'steps',
        'trainLoss',
        'valLoss',
        'valAccuracy',
        'testLoss',
        'testAccuracy',
        'seconds',
        'paramsSha256',
        'config',
      ]);
      // No --val-split: the validation columns are empty, and the table has none.
      expect(rows.map((row) => [row.valLoss, row.valAccuracy])).toEqual(new Array(6).fill(['', '']));
      expect(rows.map((row) => [row.seed, row.lr, row.batchSize, row.status, row.steps]).sort()).toEqual(
        [
          [0, 0.1],
          [1, 0.1],
          [2, 0.1],
          [0, 0.5],
          [1, 0.5],
          [2, 0.5],
        ]
          .map(([s, lr]) => [s, lr, 64, 'done', 47])
          .sort(),
      );
      // Each against the same settings trained alone, by flags and on another thread count.
      for (const row of rows.filter((x) => x.lr === 0.5 || x.seed === 2)) {
        const solo = runCli(['train', '--seed', String(row.seed), '--lr', String(row.lr), '--threads', '2', ...SMALL], {
          timeout: SLOW_TEST_TIMEOUT,
        });
        expect(solo.code).toBe(0);
        expect(row.paramsSha256).toBe(doneHash(solo.stdout));
        expect(solo.stdout).toContain(`test acc ${(row.testAccuracy as number).toFixed(4)}`);
      }
      // Each run is a plain `lockstep train --config FILE` with the settings in the results file.
      const config = join(tempDir(), 'run.json');
      writeFileSync(config, rows[0].config as string);
      const fromFile = runCli(['train', '--config', config, '--threads', '3'], { timeout: SLOW_TEST_TIMEOUT });
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(doneHash(fromFile.stdout)).toBe(rows[0].paramsSha256);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "--val-split: each run's last validation loss and accuracy in the table and the file; a file from before those columns goes on with its own",
    () => {
      const dir = tempDir();
      const flags = ['--train-limit', '1000', '--test-limit', '100', '--epochs', '1', '--val-split', '0.2'];
      const r = runCli(['sweep', '--seed', '0', ...flags, '--out', 'new.csv'], {
        cwd: dir,
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('lockstep sweep: 1 run, 1 at a time, 1 thread each; results in new.csv');
      expect(r.stdout).toMatch(/^ {2}run {3}seed {2}optimizer {8}lr {2}batch {2}val acc {2}val loss {2}test acc {2}/m);
      const [row] = parse(readFileSync(join(dir, 'new.csv'), 'utf8'), { columns: true, cast: true }) as Record<
        string,
        number | string
      >[];
      const solo = runCli(['train', '--seed', '0', ...flags, '--json', '--threads', '2'], {
        timeout: SLOW_TEST_TIMEOUT,
      });
      const epoch = JSON.parse(solo.stdout.split('\n')[0]) as { valLoss: number; valAccuracy: number };
      expect([row.valLoss, row.valAccuracy]).toEqual([epoch.valLoss, epoch.valAccuracy]);
      expect(epoch.valAccuracy).toBeGreaterThan(0.2);
      expect(r.stdout).toMatch(new RegExp(` ${epoch.valAccuracy.toFixed(4)} +${epoch.valLoss.toFixed(4)} `));
      // The same row as a file written before the validation columns: the sweep skips it and appends in its columns.
      const [header, line] = readFileSync(join(dir, 'new.csv'), 'utf8').trim().split('\n');
      const cells = parse(line) as string[][];
      const keep = (c: string[]) => c.filter((_, j) => j !== 8 && j !== 9);
      expect(header.split(',').slice(8, 10)).toEqual(['valLoss', 'valAccuracy']);
      const oldHeader = keep(header.split(',')).join(',');
      writeFileSync(
        join(dir, 'old.csv'),
        `${oldHeader}\n${keep(cells[0])
          .map((c) => (c.includes(',') ? `"${c.replaceAll('"', '""')}"` : c))
          .join(',')}\n`,
      );
      const more = runCli(['sweep', '--seed', '0..1', ...flags, '--out', 'old.csv'], {
        cwd: dir,
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(more.code, more.stderr).toBe(0);
      expect(more.stdout).toContain('1 already in');
      const old = parse(readFileSync(join(dir, 'old.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
      expect(old.map((o) => Object.keys(o).join(','))).toEqual([oldHeader, oldHeader]);
      expect(old.map((o) => o.seed)).toEqual(['0', '1']);
      // Another sweep's file is refused, naming the settings that differ from the nearest run of this one.
      const other = runCli(
        ['sweep', '--seed', '0..1', ...flags.slice(0, 5), '2', ...flags.slice(6), '--out', 'old.csv'],
        {
          cwd: dir,
        },
      );
      expect({ code: other.code, stderr: other.stderr }).toEqual({
        code: 2,
        stderr:
          'lockstep: --out old.csv: line 2 holds a run that is not in this sweep (--epochs 1 there, 2 here); give another --out, or the flags of that sweep\n',
      });
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    '--optimizer is a grid axis: each optimizer run equals the same run alone, with its own default lr',
    () => {
      const r = runCli(
        ['sweep', '--optimizer', 'sgd,adam', '--train-limit', '1000', '--test-limit', '100', '--epochs', '1', '--json'],
        { timeout: SLOW_TEST_TIMEOUT },
      );
      expect(r.code, r.stderr).toBe(0);
      const rows = r.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { optimizer: string; lr: number; paramsSha256: string });
      expect(rows.map((row) => [row.optimizer, row.lr]).sort()).toEqual([
        ['adam', 0.001],
        ['sgd', 0.5],
      ]);
      const adam = runCli(
        [
          'train',
          '--optimizer',
          'adam',
          '--train-limit',
          '1000',
          '--test-limit',
          '100',
          '--epochs',
          '1',
          '--threads',
          '2',
        ],
        { timeout: SLOW_TEST_TIMEOUT },
      );
      expect(adam.code, adam.stderr).toBe(0);
      expect(rows.find((row) => row.optimizer === 'adam')!.paramsSha256).toBe(doneHash(adam.stdout));
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'Ctrl-C stops every run cleanly; the same command resumes, skipping the finished runs',
    async () => {
      const out = join(tempDir(), 'results.jsonl');
      const args = [
        'sweep',
        '--seed',
        '0..5',
        '--parallel',
        '2',
        '--train-limit',
        '12000',
        '--test-limit',
        '200',
        '--epochs',
        '2',
        '--out',
        out,
      ];
      const sweep = startCli(args);
      await sweep.printed(/^run \d+ \(1\/6 finished\)/);
      sweep.child.kill('SIGINT');
      const stopped = await sweep.exit;
      expect(stopped.code).toBe(130);
      expect(stopped.stderr).toMatch(
        /^lockstep: SIGINT: stopping every run after its current step .*\nlockstep: sweep interrupted: [1-5] of 6 runs finished \(in .*results\.jsonl; the same command resumes\), [1-2] runs? stopped\n$/,
      );
      expect(processesWith(`lockstep-sweep-${sweep.child.pid}-`)).toEqual([]);
      expect(readdirSync(tmpdir()).filter((name) => name.startsWith(`lockstep-sweep-${sweep.child.pid}-`))).toEqual([]);
      const finished = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(finished.length).toBe(Number(/([1-5]) of 6 runs finished/.exec(stopped.stderr)![1]));

      const resumed = runCli(args, { timeout: SLOW_TEST_TIMEOUT });
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain(`lockstep sweep: 6 runs (${finished.length} already in ${out}: not run again)`);
      const all = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(all.slice(0, finished.length)).toEqual(finished);
      expect(all.map((row) => row.seed).sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(new Set(all.map((row) => row.paramsSha256)).size).toBe(6);
      // However the runs finished, each keeps its place in the grid as its number.
      expect(all.map((row) => row.run - row.seed)).toEqual([1, 1, 1, 1, 1, 1]);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'a grown grid over the same --out keeps the finished rows as they are and numbers the new runs after them',
    () => {
      const out = join(tempDir(), 'results.csv');
      const tiny = ['--lr', '0.1,0.5', '--train-limit', '500', '--test-limit', '100', '--epochs', '1', '--out', out];
      const first = runCli(['sweep', '--seed', '0..1', ...tiny], { timeout: SLOW_TEST_TIMEOUT });
      expect(first.code, first.stderr).toBe(0);
      const before = readFileSync(out, 'utf8');
      const grown = runCli(['sweep', '--seed', '0..2', ...tiny], { timeout: SLOW_TEST_TIMEOUT });
      expect(grown.code, grown.stderr).toBe(0);
      expect(grown.stdout).toContain(`lockstep sweep: 6 runs (4 already in ${out}: not run again)`);
      const after = readFileSync(out, 'utf8');
      expect(after.startsWith(before)).toBe(true);
      const rows = parse(after, { columns: true, cast: true }) as Record<string, string | number>[];
      // Seeds vary fastest: the first sweep's grid is (0, 0.1) (1, 0.1) (0, 0.5) (1, 0.5).
      expect(rows.map((row) => [row.run, row.seed, row.lr]).sort()).toEqual([
        [1, 0, 0.1],
        [2, 1, 0.1],
        [3, 0, 0.5],
        [4, 1, 0.5],
        [5, 2, 0.1],
        [6, 2, 0.5],
      ]);
      // The table shows each number once, in grid order.
      const table = grown.stdout
        .split('\n')
        .filter((line) => /^ +\d+ +\d+ +sgd /.test(line))
        .map((line) => Number(line.trim().split(/ +/)[0]));
      expect(table).toEqual([1, 2, 5, 3, 4, 6]);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'resumes from a results file whose last line was cut off (a sweep killed while writing it): that run is run again',
    () => {
      for (const name of ['cut.csv', 'cut.jsonl']) {
        const out = join(tempDir(), name);
        const args = ['sweep', '--seed', '0..1', ...SMALL, '--out', out];
        expect(runCli(args, { timeout: SLOW_TEST_TIMEOUT }).code).toBe(0);
        const whole = readFileSync(out, 'utf8');
        writeFileSync(out, whole.slice(0, -20));
        const resumed = runCli(args, { timeout: SLOW_TEST_TIMEOUT });
        expect(resumed.code, resumed.stderr).toBe(0);
        expect(resumed.stdout).toContain('lockstep sweep: 2 runs (1 already in');
        const lines = readFileSync(out, 'utf8').split('\n');
        expect(lines.pop()).toBe('');
        // the same hashes as the whole file's, each run once, every line whole
        const hashes = (text: string) => (text.match(/[0-9a-f]{64}/g) ?? []).sort();
        expect(hashes(lines.join('\n'))).toEqual(hashes(whole));
        expect(hashes(whole)).toHaveLength(2);
      }
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'records a diverged run as such and goes on; a run that fails stops the sweep with its message and exit code',
    () => {
      const diverged = runCli(['sweep', '--seed', '0..1', '--lr', '1000', ...SMALL, '--json'], {
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(diverged.code, diverged.stderr).toBe(0);
      const rows = diverged.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(rows.map((r) => [r.event, r.seed, r.status, r.testAccuracy, r.paramsSha256]).sort()).toEqual([
        ['sweep-run', 0, 'diverged', null, null],
        ['sweep-run', 1, 'diverged', null, null],
      ]);
      const out = join(tempDir(), 'r.jsonl');
      // Every run's coordinator throws at its 5th step (the engine's test hook).
      const failed = runCli(['sweep', '--seed', '0..3', ...SMALL, '--out', out], {
        env: { LOCKSTEP_TEST_FAULT: '0:5' },
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(
        /^lockstep: sweep run [12] \(\{"epochs":1,"seed":[01],"testLimit":200,"trainLimit":3000\}\) failed: internal error: injected fault in the coordinator \(thread 0\) at step 5; the other runs were stopped\n$/,
      );
      expect(readFileSync(out, 'utf8')).toBe('');
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "refuses a bad grid, an unknown results format, and another sweep's results file (left untouched), in one line",
    () => {
      const dir = tempDir();
      const expectRefused = (args: string[], message: string) => {
        const r = runCli(['sweep', ...SMALL, ...args]);
        expect(r.code).toBe(2);
        expect(r.stderr).toBe(`lockstep: ${message}\n`);
        expect(r.stdout).toBe('');
      };
      expectRefused(['--seed', '3..1'], '--seed 3..1: the range 3..1 runs backwards; write 1..3');
      expectRefused(['--seed', '0..100000'], '--seed 0..100000: at most 100000 values in a range');
      const folder = join(dir, 'results.csv');
      mkdirSync(folder);
      expectRefused(['--out', folder], `--out ${folder}: is a directory; name a file`);
      // with --queue the workers decide their threads and runs at once: refused before the URL is tried
      for (const [flag, value] of [
        ['--threads', '2'],
        ['--parallel', '3'],
      ])
        expectRefused(
          ['--queue', 'redis://127.0.0.1:1', flag, value],
          `${flag} ${value} with --queue: each worker's own ${flag} decides; drop it here`,
        );
      expectRefused(['--lr', '0.1,x'], '--lr 0.1,x: must be numbers separated by commas, e.g. 0.1,0.5');
      expectRefused(['--lr', '0.1,-1'], '--lr -1: must be a finite number > 0');
      expectRefused(['--parallel', '0'], '--parallel 0: must be a positive integer');
      expectRefused(['--out', join(dir, 'r.txt')], `--out ${join(dir, 'r.txt')}: must end in .csv or .jsonl`);
      const other = join(dir, 'other.csv');
      const text = 'run,seed\n1,0\n';
      writeFileSync(other, text);
      expectRefused(
        ['--out', other],
        `--out ${other}: line 1: the header is not run,seed,lr,batchSize,optimizer,status,steps,trainLoss,valLoss,valAccuracy,testLoss,testAccuracy,seconds,paramsSha256,config; not a lockstep sweep results file`,
      );
      expect(readFileSync(other, 'utf8')).toBe(text);
      expect(existsSync(join(dir, 'r.txt'))).toBe(false);
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('lockstep train --config', () => {
  it(
    'refuses a file that is not a JSON object of valid training options, naming it',
    () => {
      const dir = tempDir();
      const cases: [string, string][] = [
        ['{"seed": 1,', 'not valid JSON'],
        ['nope\n', 'not valid JSON'], // V8 quotes the text, newline and all: it must not break the one line
        ['[1, 2]', 'must be one JSON object of training options, e.g. {"seed": 3, "lr": 0.1}'],
        ['{"sead": 1}', 'unknown training option "sead"'],
        ['{"lr": -1}', '--lr -1: must be a finite number > 0'],
      ];
      for (const [i, [text, message]] of cases.entries()) {
        const file = join(dir, `c${i}.json`);
        writeFileSync(file, text);
        const r = runCli(['train', '--config', file]);
        expect(r.code).toBe(2);
        expect(r.stderr.split('\n')).toHaveLength(2);
        expect(r.stderr).toContain(`lockstep: --config ${file}: ${message}`);
      }
      const missing = runCli(['train', '--config', join(dir, 'none.json')]);
      expect(missing.stderr).toBe(`lockstep: --config ${join(dir, 'none.json')}: no such file or directory\n`);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "names its data files from the config file's folder, whatever the directory it is run from",
    () => {
      const dir = tempDir();
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'tr.csv'), blobsCsv(40, 5));
      writeFileSync(join(dir, 'sub', 'c.json'), '{"data": "tr.csv", "hidden": [4], "epochs": 1, "batchSize": 8}');
      const fromFile = runCli(['train', '--config', join('sub', 'c.json'), '--threads', '1', '--json'], { cwd: dir });
      expect(fromFile.code, fromFile.stderr).toBe(0);
      const byFlags = ['train', '--data', 'tr.csv', '--hidden', '4', '--epochs', '1', '--batch-size', '8', '--json'];
      const direct = runCli([...byFlags, '--threads', '1'], { cwd: join(dir, 'sub') });
      const hash = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!).paramsSha256;
      expect(hash(fromFile.stdout)).toBe(hash(direct.stdout));
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('the run configs folder', () => {
  it('removes the folders of sweeps that were killed (their process gone), and only those', () => {
    // A private temp folder (tmpdir() reads TMPDIR on each call): no other test's or user's folders are touched.
    const scratch = tempDir();
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    try {
      const dead = spawnSync('true').pid!;
      const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1];
      const names = {
        killed: `lockstep-sweep-${dead}-${ns}-aB3dE6`,
        live: `lockstep-sweep-${process.pid}-${ns}-aB3dE6`,
        worker: `lockstep-worker-${dead}-${ns}-aB3dE6`,
        // Another PID namespace's (a container sharing /tmp), and a user's folder that only looks like one.
        otherNamespace: `lockstep-sweep-${dead}-1${ns}-aB3dE6`,
        lookalike: `lockstep-sweep-${dead}-results`,
      };
      for (const name of Object.values(names)) mkdirSync(join(scratch, name));
      writeFileSync(join(scratch, names.killed, 'run-1.json'), '{}');
      const dir = makeScratchDir('sweep');
      expect(dir.startsWith(join(scratch, `lockstep-sweep-${process.pid}-${ns}-`))).toBe(true);
      expect(readdirSync(scratch).sort()).toEqual(
        [basename(dir), names.live, names.worker, names.otherNamespace, names.lookalike].sort(),
      );
    } finally {
      process.env.TMPDIR = saved;
      if (saved === undefined) delete process.env.TMPDIR;
    }
  });
});
