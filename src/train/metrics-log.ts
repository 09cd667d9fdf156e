import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { extname } from 'node:path';
import { UserError } from '../errors.js';
import { checkWritable } from '../fs/atomic-write.js';
import type { EpochReport } from './epoch-loop.js';

/**
 * --log FILE.csv|FILE.jsonl: one row per epoch, written and flushed to disk as the epoch ends, so the file
 * survives a crash. The fields, in this order (`plot` reads them): a value the run does not have is empty in
 * CSV and null in JSON lines. `steps` counts the run's steps so far; `seconds` is the epoch's, training and
 * evaluation.
 */
export const LOG_FIELDS = [
  'epoch',
  'steps',
  'lr',
  'trainLoss',
  'trainAccuracy',
  'valLoss',
  'valAccuracy',
  'testLoss',
  'testAccuracy',
  'seconds',
  'paramsSha256',
] as const;

export type LogRow = Record<(typeof LOG_FIELDS)[number], number | string | null>;

export function logRow(r: EpochReport): LogRow {
  const value = (x: number) => (Number.isFinite(x) ? x : null);
  return {
    epoch: r.epoch,
    steps: r.steps,
    lr: r.lr,
    trainLoss: value(r.trainLoss),
    trainAccuracy: value(r.trainAccuracy),
    valLoss: value(r.valLoss),
    valAccuracy: value(r.valAccuracy),
    testLoss: value(r.testLoss),
    testAccuracy: value(r.testAccuracy),
    seconds: r.trainSeconds + r.evalSeconds,
    paramsSha256: r.paramsSha256,
  };
}

/** A --log file's format, by its extension; anything but .csv or .jsonl is refused, naming the file as given. */
export function logFormat(path: string): 'csv' | 'jsonl' {
  const ext = extname(path).toLowerCase();
  if (ext !== '.csv' && ext !== '.jsonl') throw new UserError(`--log ${path}: must end in .csv or .jsonl`);
  return ext === '.csv' ? 'csv' : 'jsonl';
}

export class MetricsLog {
  private fd: number | null = null;
  private readonly json: boolean;

  /**
   * A new run starts the file (with the CSV header). A run resumed at epoch `resumeEpoch` keeps the log's rows
   * of the epochs before it and drops the others (a partial epoch, or one finished after the checkpoint was
   * written), which it trains again: each epoch has one row. The file is opened at the first epoch's end, so
   * a run refused before training writes nothing.
   */
  constructor(
    readonly path: string,
    private readonly resumeEpoch?: number,
  ) {
    this.json = logFormat(path) === 'jsonl';
    checkWritable(path, '--log');
  }

  epoch(report: EpochReport): void {
    if (this.fd === null) this.open();
    const row = logRow(report);
    this.write(
      this.json
        ? `${JSON.stringify(row)}\n`
        : `${LOG_FIELDS.map((f) => (row[f] === null ? '' : String(row[f]))).join(',')}\n`,
    );
  }

  private open(): void {
    const kept = this.resumeEpoch === undefined ? [] : this.rowsBefore(this.resumeEpoch);
    try {
      this.fd = openSync(this.path, 'w');
    } catch (err) {
      throw new UserError(`--log ${this.path}: cannot write (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (!this.json) this.write(`${LOG_FIELDS.join(',')}\n`);
    for (const line of kept) this.write(`${line}\n`);
  }

  /** The lines of the existing log whose epoch is below `epoch`, in order (none when there is no file). */
  private rowsBefore(epoch: number): string[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return [];
    }
    const epochOf = (line: string) =>
      this.json ? Number((JSON.parse(line) as { epoch?: unknown }).epoch) : Number(line.split(',')[0]);
    return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('epoch,') && epochOf(line) < epoch);
  }

  private write(text: string): void {
    if (this.fd === null) return;
    writeSync(this.fd, text);
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
