import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, SLOW_TEST_TIMEOUT, tempDir } from './helpers.js';

const HEADER = 'epoch,steps,lr,trainLoss,trainAccuracy,valLoss,valAccuracy,testLoss,testAccuracy,seconds,paramsSha256';

/** The chart's points, as vega labels them for screen readers: "epoch: 2; accuracy: 0.91; split: val" (a line repeats its first). */
function points(svg: string): string[] {
  return [...new Set([...svg.matchAll(/aria-label="(epoch: [^"]*)"/g)].map((m) => m[1]))];
}

function plot(log: string, text: string | Uint8Array, extra: string[] = []) {
  const dir = tempDir();
  const file = join(dir, log);
  const svg = join(dir, 'curves.svg');
  writeFileSync(file, text);
  const r = runCli(['plot', file, '--svg', svg, ...extra]);
  return { ...r, file, svg, chart: () => readFileSync(svg, 'utf8') };
}

describe('lockstep plot', () => {
  it('draws loss and accuracy per split from a --log CSV; an empty field is no point', () => {
    const r = plot(
      'run.csv',
      [
        HEADER,
        '1,100,0.5,0.9,0.8,0.6,0.82,0.61,0.81,1.5,aa',
        '2,200,0.5,0.4,0.9,0.35,0.9,0.36,0.89,1.4,bb',
        '3,300,0.5,0.3,0.93,,,0.3,0.92,1.4,cc',
        '',
      ].join('\n'),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`wrote ${r.svg}: loss and accuracy over 3 epochs (train, val, test)\n`);
    const chart = r.chart();
    expect(chart).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>.*<\/svg>$/s);
    const labels = points(chart);
    expect(labels).toContain('epoch: 2; mean cross-entropy loss: 0.35; split: val');
    expect(labels).toContain('epoch: 3; accuracy: 0.92; split: test');
    expect(labels.filter((l) => l.endsWith('split: val') && l.includes('loss'))).toHaveLength(2);
    expect(labels.filter((l) => l.endsWith('split: train') && l.includes('accuracy'))).toHaveLength(3);
  });

  it(
    'reads a --log JSONL file and saved train --json output (its own field names, other events skipped)',
    () => {
      const jsonl = plot(
        'run.jsonl',
        [
          '{"epoch":1,"steps":10,"lr":0.5,"trainLoss":0.7,"trainAccuracy":0.8,"valLoss":null,"valAccuracy":null,"testLoss":0.5,"testAccuracy":0.85,"seconds":1,"paramsSha256":"aa"}',
          '{"epoch":2,"steps":20,"lr":0.5,"trainLoss":0.3,"trainAccuracy":0.9,"valLoss":null,"valAccuracy":null,"testLoss":0.4,"testAccuracy":0.88,"seconds":1,"paramsSha256":"bb"}',
        ].join('\n'),
        ['--json'],
      );
      expect(jsonl.code, jsonl.stderr).toBe(0);
      expect(JSON.parse(jsonl.stdout)).toEqual({ event: 'plot', svg: jsonl.svg, epochs: 2, curves: ['train', 'test'] });
      expect(points(jsonl.chart())).toContain('epoch: 2; accuracy: 0.88; split: test');

      const trained = runCli(['train', '--epochs', '2', '--train-limit', '2000', '--test-limit', '200', '--json'], {
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(trained.code).toBe(0);
      const fromTrain = plot('train.json', trained.stdout);
      expect(fromTrain.code, fromTrain.stderr).toBe(0);
      const second = JSON.parse(trained.stdout.split('\n')[1]);
      expect(points(fromTrain.chart())).toContain(`epoch: 2; accuracy: ${second.testAccuracy}; split: test`);
      expect(fromTrain.stdout).toContain('over 2 epochs (train, test)');

      // train --json output saved before its epoch events took the --log's names (totalSteps, loss, trainAcc, …)
      const older = plot(
        'older.json',
        '{"event":"epoch","epoch":1,"steps":3,"totalSteps":9,"loss":0.7,"trainAcc":0.8,"testLoss":0.5,"testAcc":0.85}\n',
      );
      expect(older.code, older.stderr).toBe(0);
      expect(points(older.chart())).toContain('epoch: 1; accuracy: 0.85; split: test');
    },
    SLOW_TEST_TIMEOUT,
  );

  it('refuses a file it cannot plot in one line naming the file and line, and keeps an existing chart without --force', () => {
    const cases: [string, string, string][] = [
      ['bad.csv', `${HEADER}\n1,1,0.5,abc,0.8,,,,,1,aa\n`, ':2: trainLoss "abc" is not a number'],
      [
        'other.csv',
        'a,b\n1,2\n',
        ':1: the header has no "epoch" and loss or accuracy columns (expected epoch,steps,lr,trainLoss,trainAccuracy,valLoss,valAccuracy,testLoss,testAccuracy,seconds,paramsSha256)',
      ],
      ['bad.jsonl', '{"epoch":1,"trainLoss":0.5}\n{"epoch":2,\n', ':2: not a JSON object'],
      ['empty.csv', '', ': no epochs in it (a train --log file, or train --json output saved to a file)'],
    ];
    for (const [name, text, message] of cases) {
      const r = plot(name, text);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`lockstep: ${r.file}${message}\n`);
    }
    const dir = tempDir();
    const svg = join(dir, 'kept.svg');
    writeFileSync(svg, 'mine');
    const log = join(dir, 'run.csv');
    writeFileSync(log, `${HEADER}\n1,1,0.5,0.5,0.8,,,,,1,aa\n`);
    const r = runCli(['plot', log, '--svg', svg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`lockstep: --svg ${svg}: exists; pass --force to replace it\n`);
    expect(readFileSync(svg, 'utf8')).toBe('mine');
    expect(runCli(['plot', log, '--svg', svg, '--force']).code).toBe(0);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg/);
  });

  it('refuses a file that is not a log (saved plain train output, a saved model, a stray quote) in its own words, writing no chart', () => {
    const trainOutput = [
      'Epoch 1: train acc 0.6060, test acc 0.6200, loss 1.8005, test loss 1.2124, 0.06 s train + 0.01 s eval, sgd lr 0.5',
      'Epoch 2: train acc 0.8560, test acc 0.8100, loss 0.9809, test loss 0.5487, 0.04 s train + 0.00 s eval, sgd lr 0.5',
      'Done: 2 epochs, 32 steps, test acc 0.8100, 0.29 s, params sha256 3583c03e9568f23e93c429650f542d25126492be6e3e2c14449671c3e8eb9518',
      '',
    ].join('\n');
    // A .safetensors file begins with its JSON header's length as 8 little-endian bytes.
    const safetensors = Buffer.concat([
      Buffer.from([0xe8, 0x02, 0, 0, 0, 0, 0, 0]),
      Buffer.from('{"__metadata__":{"format":"pt"}}'),
    ]);
    const cases: [string, string | Uint8Array, string][] = [
      ['a.out', trainOutput, 'line 3: 5 fields where the header has 6'],
      ['model.safetensors', safetensors, 'binary data, not text'],
      ['quote.csv', `${HEADER}\n1,"aa\n`, 'line 2: a double quote that is never closed'],
      ['cfg.json', '{"seed": 1}\n', 'line 1 has no "epoch"'],
    ];
    for (const [name, content, why] of cases) {
      const r = plot(name, content);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `lockstep: ${r.file}: not a train --log file (${why}); plot reads a train --log file, or train --json output saved to a file\n`,
      );
      expect(existsSync(r.svg)).toBe(false);
    }
  });
});
