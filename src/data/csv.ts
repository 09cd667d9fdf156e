import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { unreadableFile, UserError } from '../errors.js';

/**
 * A CSV table (RFC 4180, header row): one label column, every other column a numeric feature, read as
 * float32 (x = fround(Number(cell))). Files without a double quote anywhere take a byte-level fast path;
 * a file with one is parsed by csv-parse instead (quoted fields, embedded commas and newlines).
 */
export interface CsvTable {
  path: string;
  /** Every column of the header, in file order. */
  header: string[];
  label: string;
  /** The feature columns, in file order. */
  featureNames: string[];
  count: number;
  /** [count][featureNames.length], raw values as float32. */
  features: Float32Array;
  /** Each row's label cell, as written. */
  labels: string[];
  /** Each row's line in the file (1-based; the header is line 1). */
  lines: Int32Array;
}

const COMMA = 0x2c;
const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const CHUNK_BYTES = 4 << 20;
/** Powers of ten up to 1e22 are exact doubles: a mantissa below 2^53 times or over one is correctly rounded. */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const NUMBER_TEXT = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/**
 * Reads `path`; the label column is `label`, else "label", else the last; null: no label column, every
 * column a feature (rows to classify). `flag` names the file's flag in messages.
 */
export function readCsvTable(path: string, label: string | null | undefined, flag = '--data'): CsvTable {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw unreadableFile(`${flag} ${path}`, err);
  }
  try {
    return fastPath(fd, path, label) ?? slowPath(path, label);
  } finally {
    closeSync(fd);
  }
}

/** The header row alone (quotes around a name dropped): what a table's columns are called. */
export function readCsvHeader(path: string, flag: string): string[] {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    const head = Buffer.alloc(1 << 16);
    const n = readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    text = head.toString('utf8', 0, n).replace(/^\uFEFF/, '');
  } catch (err) {
    throw unreadableFile(`${flag} ${path}`, err);
  }
  const line = text.split('\n')[0].replace(/\r$/, '');
  if (line.trim() === '') throw new UserError(`${path}: empty file; a CSV table needs a header row`);
  return line.split(',').map((s) => s.trim().replace(/^"(.*)"$/, '$1'));
}

/**
 * Where each of a model's features (by name) is among a table's columns; `what` (a flag and its file) names
 * the table when one is missing.
 */
export function featureColumns(features: string[], columns: string[], what: string): number[] {
  const missing = features.find((name) => !columns.includes(name));
  if (missing !== undefined)
    throw new UserError(
      `${what}: no column "${missing}", a feature of the model (its features: ${features.slice(0, 8).join(', ')}${features.length > 8 ? ', …' : ''})`,
    );
  return features.map((name) => columns.indexOf(name));
}

/**
 * The one column of a header beside a model's features (its label), or null where there is none; refuses a
 * header without one of the features or with more than one other column, or (a model that keeps the name of
 * its label column, `labelName`) with another column than that.
 */
export function labelBesideFeatures(
  features: string[],
  header: string[],
  what: string,
  labelName?: string,
): string | null {
  featureColumns(features, header, what);
  const rest = header.filter((name) => !features.includes(name));
  // "label" is a label column in any case, as training reads it.
  const isLabel = (name: string) => name === labelName || (isLabelName(name) && isLabelName(labelName ?? ''));
  const other = labelName === undefined ? undefined : rest.find((name) => !isLabel(name));
  if (other !== undefined)
    throw new UserError(
      `${what}: column "${other}" is neither a feature of the model nor its label column "${labelName}"; remove it`,
    );
  if (rest.length > 1)
    throw new UserError(
      `${what}: columns ${rest.map((n) => `"${n}"`).join(', ')} are not features of the model; at most one label column may be added`,
    );
  return rest[0] ?? null;
}

/** Which column is the label, checked against the header. */
function labelColumn(header: string[], label: string | null | undefined, path: string): number {
  if (label === null) return -1;
  if (header.length < 2)
    throw new UserError(
      `${path}: line 1: the header has ${header.length} column; a table needs a label and at least one feature`,
    );
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) {
      // A file without a header: its first row of numbers repeats a value.
      const data = headerOfNumbers(header) ? '; if line 1 is a row of data, add a header line naming the columns' : '';
      throw new UserError(`${path}: line 1: column "${name}" appears twice in the header${data}`);
    }
    seen.add(name);
  }
  if (label !== undefined) {
    const at = header.indexOf(label);
    if (at < 0) throw new UserError(`--label ${label}: ${path} has no such column (its columns: ${preview(header)})`);
    return at;
  }
  const named = header.filter(isLabelName);
  if (named.length > 1)
    throw new UserError(
      `${path}: columns ${named.map((n) => `"${n}"`).join(' and ')} both name the label; give --label with the one that holds the classes`,
    );
  const at = header.findIndex(isLabelName);
  return at >= 0 ? at : header.length - 1;
}

/** "label" in any case: the label column a table has without --label. */
export function isLabelName(name: string): boolean {
  return name.trim().toLowerCase() === 'label';
}

/** Column names that often hold a table's classes: a column so named, not the one read as the label, gets a notice. */
const LABEL_LIKE = ['target', 'class', 'y', 'species', 'category'];

/** A column other than the label whose name says it may be the label ("target", "class"…), or undefined. */
export function labelLikeColumn(table: CsvTable): string | undefined {
  return table.featureNames.find((name) => LABEL_LIKE.includes(name.trim().toLowerCase()));
}

/** A header whose every field is a number: likely a file without one, its first row of data read as names. */
export function headerOfNumbers(header: string[]): boolean {
  return header.every(isNumberText);
}

/** A cell that reads as a finite number (`3`, `1.0`, `-2e3`; not an empty cell). */
export function isNumberText(text: string): boolean {
  return text.trim() !== '' && Number.isFinite(Number(text));
}

export function preview(names: string[]): string {
  return names.length <= 8 ? names.join(', ') : `${names.slice(0, 8).join(', ')}, … (${names.length} in all)`;
}

/** Grows float32 rows as they come, doubling past the size guessed from the file's length. */
class RowBuffer {
  features: Float32Array;
  lines: Int32Array;
  count = 0;
  constructor(
    readonly width: number,
    guess: number,
  ) {
    this.features = new Float32Array(Math.max(1, guess) * width);
    this.lines = new Int32Array(Math.max(1, guess));
  }
  row(line: number): number {
    if (this.count === this.lines.length) {
      const rows = Math.ceil(this.lines.length * 1.5) + 16;
      const features = new Float32Array(rows * this.width);
      features.set(this.features);
      const lines = new Int32Array(rows);
      lines.set(this.lines);
      this.features = features;
      this.lines = lines;
    }
    this.lines[this.count] = line;
    return this.count++ * this.width;
  }
}

/**
 * Rows the file will have, from the mean length of the lines after the header in this chunk (and 2 % more):
 * a good guess spares the growth's copies, which for MNIST's 188 MB of rows are most of the peak memory.
 */
function guessRows(buf: Buffer, from: number, bytesLeft: number): number {
  let lines = 0;
  for (let i = buf.indexOf(NL, from); i >= 0; i = buf.indexOf(NL, i + 1)) lines++;
  if (lines === 0) return 16;
  return Math.ceil((bytesLeft / ((buf.length - from) / lines)) * 1.02) + 16;
}

/** The byte-level reader; null when the file has a double quote (csv-parse reads those). */
function fastPath(fd: number, path: string, labelName: string | null | undefined): CsvTable | null {
  const size = fstatSync(fd).size;
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let carry: Buffer = Buffer.alloc(0);
  let line = 0;
  let header: string[] | null = null;
  let labelAt = -1;
  let rows: RowBuffer | null = null;
  const labels: string[] = [];
  let position = 0;
  let blankLine = 0;
  const takeLine = (buf: Buffer, start: number, end: number): void => {
    line++;
    if (end > start && buf[end - 1] === CR) end--;
    if (line === 1 && end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf)
      start += 3;
    if (header === null) {
      header = buf
        .toString('utf8', start, end)
        .split(',')
        .map((s) => s.trim());
      labelAt = labelColumn(header, labelName, path);
      rows = new RowBuffer(
        header.length - (labelAt >= 0 ? 1 : 0),
        guessRows(buf, end + 1, size - position + buf.length),
      );
      return;
    }
    if (end === start) {
      // A blank line is only allowed at the end of the file.
      if (blankLine === 0) blankLine = line;
      return;
    }
    if (blankLine !== 0) throw new UserError(`${path}: line ${blankLine}: empty row`);
    parseRow(buf, start, end, header, labelAt, rows as unknown as RowBuffer, labels, path, line);
  };
  for (;;) {
    const n = readSync(fd, chunk, 0, CHUNK_BYTES, position);
    position += n;
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
    if (buf.indexOf(QUOTE) >= 0) return null;
    let start = 0;
    for (let nl = buf.indexOf(NL, start); nl >= 0; nl = buf.indexOf(NL, start)) {
      takeLine(buf, start, nl);
      start = nl + 1;
    }
    if (n === 0) {
      if (start < buf.length) takeLine(buf, start, buf.length);
      break;
    }
    carry = Buffer.from(buf.subarray(start));
  }
  if (header === null) throw new UserError(`${path}: empty file; a CSV table needs a header row`);
  return finish(path, header, labelAt, rows as unknown as RowBuffer, labels);
}

function parseRow(
  buf: Buffer,
  start: number,
  end: number,
  header: string[],
  labelAt: number,
  rows: RowBuffer,
  labels: string[],
  path: string,
  line: number,
): void {
  try {
    parseFields(buf, start, end, header, labelAt, rows, labels, path, line);
  } catch (err) {
    // A short row's misplaced cell is reported as what it is: a short row.
    throw countFields(buf, start, end) !== header.length ? ragged(path, line, buf, start, end, header.length) : err;
  }
}

function parseFields(
  buf: Buffer,
  start: number,
  end: number,
  header: string[],
  labelAt: number,
  rows: RowBuffer,
  labels: string[],
  path: string,
  line: number,
): void {
  const out = rows.row(line);
  const { features } = rows;
  let column = 0;
  let f = out;
  let i = start;
  for (;;) {
    let stop = i;
    while (stop < end && buf[stop] !== COMMA) stop++;
    if (column >= header.length) throw ragged(path, line, buf, start, end, header.length);
    if (column === labelAt) {
      labels.push(buf.toString('utf8', i, stop).trim());
    } else {
      features[f++] = parseNumber(buf, i, stop, path, line, column, header);
    }
    column++;
    if (stop === end) break;
    i = stop + 1;
  }
  if (column !== header.length) throw ragged(path, line, buf, start, end, header.length);
}

function countFields(buf: Buffer, start: number, end: number): number {
  let fields = 1;
  for (let i = start; i < end; i++) if (buf[i] === COMMA) fields++;
  return fields;
}

function ragged(path: string, line: number, buf: Buffer, start: number, end: number, expected: number): UserError {
  return new UserError(`${path}: line ${line}: ${countFields(buf, start, end)} fields, but the header has ${expected}`);
}

/** Digits, a point and an exponent parsed from bytes when that is exact; anything else through Number(). */
function parseNumber(
  buf: Buffer,
  i: number,
  end: number,
  path: string,
  line: number,
  column: number,
  header: string[],
): number {
  let negative = false;
  const first = buf[i];
  let k = i;
  if (first === 0x2d) {
    negative = true;
    k++;
  } else if (first === 0x2b) k++;
  let mantissa = 0;
  let digits = 0;
  let exp10 = 0;
  let c = buf[k];
  while (k < end && c >= 0x30 && c <= 0x39) {
    mantissa = mantissa * 10 + (c - 0x30);
    digits++;
    c = buf[++k];
  }
  if (k < end && c === 0x2e) {
    c = buf[++k];
    while (k < end && c >= 0x30 && c <= 0x39) {
      mantissa = mantissa * 10 + (c - 0x30);
      digits++;
      exp10--;
      c = buf[++k];
    }
  }
  if (k === end && digits > 0 && digits <= 15 && exp10 >= -22) {
    const value = exp10 === 0 ? mantissa : mantissa / POW10[-exp10];
    return Math.fround(negative ? -value : value);
  }
  return parseCell(buf.toString('utf8', i, end), path, line, column, header);
}

function parseCell(text: string, path: string, line: number, column: number, header: string[]): number {
  const where = `${path}: line ${line}, column ${column + 1} (${header[column]})`;
  if (text.trim() === '') throw new UserError(`${where}: empty cell`);
  if (!NUMBER_TEXT.test(text)) {
    if (/^\s*[+-]?(nan|inf|infinity)\s*$/i.test(text))
      throw new UserError(`${where}: ${text.trim()} is not a finite number`);
    throw new UserError(
      `${where}: ${JSON.stringify(text.length > 30 ? `${text.slice(0, 30)}…` : text)} is not a number`,
    );
  }
  const value = Number(text);
  if (!Number.isFinite(value) || !Number.isFinite(Math.fround(value))) {
    throw new UserError(`${where}: ${text.trim()} is not a finite number (float32 holds up to 3.4e38)`);
  }
  return Math.fround(value);
}

/** csv-parse for what the fast path does not read: quoted fields, commas and newlines inside them. */
function slowPath(path: string, labelName: string | null | undefined): CsvTable {
  const bytes = readFileSync(path);
  let header: string[] | null = null;
  let labelAt = -1;
  let rows: RowBuffer | null = null;
  const labels: string[] = [];
  let blankLine = 0;
  // context.lines is where a record ends; it starts on the line after the one before it ended.
  let previousEnd = 0;
  // Each record is taken as csv-parse reads it, and dropped (null): the file is never held as strings.
  const onRecord = (record: string[], context: { lines: number }): null => {
    const line = previousEnd + 1;
    previousEnd = context.lines;
    if (header === null) {
      header = record.map((s) => s.trim());
      labelAt = labelColumn(header, labelName, path);
      const firstNewline = bytes.indexOf(NL);
      rows = new RowBuffer(
        header.length - (labelAt >= 0 ? 1 : 0),
        firstNewline < 0 ? 16 : guessRows(bytes, firstNewline + 1, bytes.length - firstNewline - 1),
      );
      return null;
    }
    if (record.length === 1 && record[0] === '') {
      if (blankLine === 0) blankLine = line;
      return null;
    }
    if (blankLine !== 0) throw new UserError(`${path}: line ${blankLine}: empty row`);
    if (record.length !== header.length)
      throw new UserError(`${path}: line ${line}: ${record.length} fields, but the header has ${header.length}`);
    const buffer = rows as unknown as RowBuffer;
    let f = buffer.row(line);
    for (let column = 0; column < record.length; column++) {
      if (column === labelAt) labels.push(record[column].trim());
      else buffer.features[f++] = parseCell(record[column], path, line, column, header);
    }
    return null;
  };
  try {
    parse(bytes, { bom: true, relax_column_count: true, skip_empty_lines: false, on_record: onRecord });
  } catch (err) {
    if (err instanceof UserError) throw err;
    const e = err as Error & { lines?: number };
    throw new UserError(`${path}: ${e.lines ? `line ${e.lines}: ` : ''}${e.message.replace(/^Invalid .*?: /, '')}`);
  }
  if (header === null || rows === null) throw new UserError(`${path}: empty file; a CSV table needs a header row`);
  return finish(path, header, labelAt, rows, labels);
}

function finish(path: string, header: string[], labelAt: number, rows: RowBuffer, labels: string[]): CsvTable {
  if (rows.count === 0) throw new UserError(`${path}: no rows after the header`);
  labels.forEach((text, r) => {
    if (text === '')
      throw new UserError(`${path}: line ${rows.lines[r]}, column ${labelAt + 1} (${header[labelAt]}): empty label`);
  });
  return {
    path,
    header,
    label: header[labelAt] ?? '',
    featureNames: header.filter((_, i) => i !== labelAt),
    count: rows.count,
    features: rows.features.subarray(0, rows.count * rows.width),
    labels,
    lines: rows.lines.subarray(0, rows.count),
  };
}
