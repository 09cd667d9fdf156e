import { resolve } from 'node:path';
import { evaluate, type Evaluation } from '../inference/evaluate.js';
import { predict, predictCsv, type Prediction } from '../inference/predict.js';
import { UserError } from '../errors.js';
import { exportModel } from '../model-io/export.js';
import type { ArgsOf } from '../options/table.js';
import { loadModel } from '../model-io/model-file.js';
import { notice, print } from './flags.js';

export async function evalCommand(args: ArgsOf<'eval'>): Promise<number> {
  const result = await evaluate(args.model, {
    data: args.data,
    labels: args.labels,
    split: args.split,
    threads: args.threads,
    kernels: args.kernels,
  });
  const config = loadModel(args.model).checkpoint?.config;
  const [limitFlag, limit] =
    args.split === 'train' ? ['--train-limit', config?.trainLimit] : ['--test-limit', config?.testLimit];
  // Only the training run's own data was cut by its limit: other --data is read whole anyway.
  const ownData =
    args.data === undefined || (config?.data !== undefined && resolve(args.data) === resolve(config.data));
  if (limit !== undefined && ownData)
    notice(`${args.model} was trained with ${limitFlag} ${limit}; eval reads the whole ${args.split} split`);
  print(args.json ? JSON.stringify({ event: 'eval', ...result }) : formatEvaluation(result));
  return 0;
}

function formatEvaluation(e: Evaluation): string {
  const classes = e.confusion.length;
  const width = Math.max(5, String(e.count).length + 1);
  const cell = (v: string | number) => String(v).padStart(width);
  const lines = [
    `${e.model}: ${e.split} accuracy ${e.accuracy.toFixed(4)} (${Math.round(e.accuracy * e.count)}/${e.count}), mean loss ${e.loss.toFixed(4)}`,
    '',
    'confusion matrix (rows: true class, columns: predicted)',
    `${cell('')}${Array.from({ length: classes }, (_, j) => cell(j)).join('')}`,
    // Class names, when the labels were strings, after each row: the columns keep the class numbers.
    ...e.confusion.map((row, i) => `${cell(i)}${row.map(cell).join('')}${e.classNames ? `  ${e.classNames[i]}` : ''}`),
  ];
  return lines.join('\n');
}

export async function predictCommand(args: ArgsOf<'predict'>): Promise<number> {
  if (args.csv !== undefined) return predictCsvCommand(args, args.csv);
  const p = predict(args.model, { index: args.index, split: args.split, data: args.data, image: args.image });
  for (const line of p.notices) notice(line);
  if (args.json) {
    const { pixels: _pixels, notices: _notices, ...rest } = p;
    const source = args.image !== undefined ? { image: args.image } : { split: args.split, index: args.index ?? 0 };
    print(JSON.stringify({ event: 'predict', ...source, ...rest }));
  } else {
    print(formatPrediction(p));
  }
  return 0;
}

/** predict --csv ROWS.csv: one line (or JSON object) per row: its line, the predicted class's name and probability. */
function predictCsvCommand(args: ArgsOf<'predict'>, csv: string): number {
  for (const [flagName, given] of [
    ['--image', args.image],
    ['--index', args.index],
    ['--data', args.data],
  ] as const) {
    if (given !== undefined) throw new UserError(`--csv and ${flagName}: give one or the other`);
  }
  const rows = predictCsv(args.model, csv, { onNotice: notice });
  for (const row of rows) {
    const name = row.className ?? String(row.predicted);
    if (args.json) {
      print(JSON.stringify({ event: 'predict', csv, ...row }));
    } else {
      const truth = row.label === undefined ? '' : row.label === name ? ' (correct)' : ` (true label ${row.label})`;
      print(`line ${row.line}: ${name} (p ${row.probabilities[row.predicted].toFixed(4)})${truth}`);
    }
  }
  return 0;
}

/** The image in the terminal as the textbook draws it (light pixels '.', dark ones '#'), then the probabilities. */
export function formatPrediction(p: Prediction): string {
  const shades = ' .:-=+*#%@';
  const rows: string[] = [];
  for (let y = 0; y < p.height; y++) {
    let line = '';
    for (let x = 0; x < p.width; x++)
      line += shades[Math.min(9, Math.floor(p.pixels[y * p.width + x] / 25.6))].repeat(2);
    rows.push(line.trimEnd());
  }
  const bars = p.probabilities.map((q, c) => {
    const mark = c === p.predicted ? ' ← predicted' : '';
    const truth = c === p.label ? ' (true label)' : '';
    return `  ${c}: ${q.toFixed(4)} ${'█'.repeat(Math.round(q * 30))}${mark}${truth}`;
  });
  const verdict =
    p.label === undefined ? '' : p.label === p.predicted ? ', correct' : `, wrong (true label ${p.label})`;
  return [...rows, '', `predicted ${p.predicted}${verdict}`, ...bars].join('\n');
}

export async function exportCommand(args: ArgsOf<'export'>): Promise<number> {
  const to: unknown = args.to;
  // yargs gives a repeated flag as an array, and `--to` at the end of the line as "".
  if (Array.isArray(to)) throw new UserError(`--to given ${to.length} times (${to.join(', ')}); give it once`);
  if (String(to).trim() === '') throw new UserError('--to: needs a value');
  const { format, paramsSha256 } = exportModel(args.checkpoint, args.to, { force: args.force, names: args.names });
  print(
    args.json
      ? JSON.stringify({ event: 'export', to: args.to, format, paramsSha256 })
      : `wrote ${args.to} (${format}, params sha256 ${paramsSha256})`,
  );
  return 0;
}
