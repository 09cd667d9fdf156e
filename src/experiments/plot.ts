import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { unreadableFile, UserError } from '../errors.js';
import type { CurveRow } from './charts.js';
import { withCurrentNames } from '../model-io/older-names.js';
import { LOG_FIELDS } from '../train/metrics-log.js';

const CURVE_FIELDS = ['trainLoss', 'valLoss', 'testLoss', 'trainAccuracy', 'valAccuracy', 'testAccuracy'] as const;

const WHAT_PLOT_READS = 'a train --log file, or train --json output saved to a file';

/** A file that is not a log at all (other text, a binary file): why, in its own words, not csv-parse's. */
function notALog(path: string, why: string): UserError {
  return new UserError(`${path}: not a train --log file (${why}); plot reads ${WHAT_PLOT_READS}`);
}

/** The epochs of a --log file (CSV or JSONL) or of saved train --json output. Errors name the file and line. */
export function readCurves(path: string): CurveRow[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw unreadableFile(path, err);
  }
  // A NUL byte is never in a log: a saved model or other binary file, refused before CSV parsing reads it.
  if (text.includes('\u0000')) throw notALog(path, 'binary data, not text');
  const rows = text.trimStart().startsWith('{') ? fromJsonLines(path, text) : fromCsv(path, text);
  if (rows.length === 0) throw new UserError(`${path}: no epochs in it (${WHAT_PLOT_READS})`);
  return rows;
}

function fromJsonLines(path: string, text: string): CurveRow[] {
  const rows: CurveRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new UserError(`${path}:${i + 1}: not a JSON object`);
    }
    // train --json prints other events (done, …) between its epochs: only epochs are plotted.
    if (o.event !== undefined && o.event !== 'epoch') return;
    if (!('epoch' in o)) throw notALog(path, `line ${i + 1} has no "epoch"`);
    rows.push(
      curveRow(
        withCurrentNames(o),
        (field, value) => `${path}:${i + 1}: "${field}": ${JSON.stringify(value)} is not a number`,
      ),
    );
  });
  return rows;
}

function fromCsv(path: string, text: string): CurveRow[] {
  let parsed: { record: string[]; info: { lines: number } }[];
  try {
    // Field counts are checked below, so that a line of the wrong length is named in plot's own words.
    parsed = parse(text, {
      skip_empty_lines: true,
      trim: true,
      relax_column_count: true,
      info: true,
    }) as unknown as typeof parsed;
  } catch (err) {
    const e = err as Error & { code?: string; lines?: number };
    const why =
      e.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'a double quote that is never closed'
        : e.code?.includes('QUOTE')
          ? 'a double quote inside a field'
          : 'not comma-separated values';
    throw notALog(path, e.lines ? `line ${e.lines}: ${why}` : why);
  }
  if (parsed.length === 0) return [];
  const [{ record: header }, ...body] = parsed;
  for (const { record, info } of body) {
    if (record.length !== header.length)
      throw notALog(path, `line ${info.lines}: ${record.length} fields where the header has ${header.length}`);
  }
  if (!header.includes('epoch') || !CURVE_FIELDS.some((f) => header.includes(f))) {
    throw new UserError(
      `${path}:1: the header has no "epoch" and loss or accuracy columns (expected ${LOG_FIELDS.join(',')})`,
    );
  }
  return body.map(({ record, info }) =>
    curveRow(
      Object.fromEntries(header.map((k, j) => [k, record[j] === '' ? null : Number(record[j])])),
      (field) => `${path}:${info.lines}: ${field} "${record[header.indexOf(field)]}" is not a number`,
    ),
  );
}

function curveRow(o: Record<string, unknown>, notANumber: (field: string, value: unknown) => string): CurveRow {
  const number = (field: string): number | null => {
    const v = o[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || Number.isNaN(v)) throw new UserError(notANumber(field, v));
    return v;
  };
  const epoch = number('epoch');
  if (epoch === null) throw new UserError(notANumber('epoch', o.epoch));
  return {
    epoch,
    trainLoss: number('trainLoss'),
    valLoss: number('valLoss'),
    testLoss: number('testLoss'),
    trainAccuracy: number('trainAccuracy'),
    valAccuracy: number('valAccuracy'),
    testAccuracy: number('testAccuracy'),
  };
}
