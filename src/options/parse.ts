/**
 * An option's value from its text (a command line), by its kind in the table. Each refuses a bad value with
 * one line that names the flag and repeats what was typed (Number() alone would turn "1.5x" into NaN and lose it).
 */
import { UserError } from '../errors.js';
import { flagOf, type OptionSpec, type Variant } from './table.js';

/** The parser of one option as `spec` (the table's entry with its command's variant) declares it. */
export function parserFor(name: string, spec: OptionSpec & Variant): ((raw: unknown) => unknown) | undefined {
  const flag = flagOf(name);
  if (spec.kind === 'list') {
    switch (spec.list) {
      case 'ranges':
        return integerRangeList(flag, spec.min ?? 0);
      case 'numbers':
        return numberList(flag);
      case 'names':
        return nameList(flag, spec.choices ?? []);
      default:
        return integerList(flag, spec.minLength ?? 1, spec.example ?? '1,2,4', spec.max);
    }
  }
  if (spec.kind === 'integer') {
    const count = integer(flag, spec.min ?? 0, spec.max);
    if (!spec.auto) return count;
    return (raw) => (String(raw).trim() === 'auto' ? 'auto' : withAuto(() => count(raw)));
  }
  if (spec.kind === 'number') return number(flag);
  return undefined;
}

/** yargs collects a repeated flag into an array: refuse that rather than guess which one was meant. */
function once(flag: string, raw: unknown): unknown {
  if (Array.isArray(raw)) throw new UserError(`${flag} given ${raw.length} times (${raw.join(', ')}); give it once`);
  return raw;
}

/** The flag's text, refusing a flag given with no value (`--epochs` at the end of the line). */
function given(flag: string, raw: unknown): string {
  const text = String(once(flag, raw)).trim();
  if (text === '') throw new UserError(`${flag}: needs a value`);
  return text;
}

/** An integer written as one, in decimal: Number() alone would also take 0x10, 1e3, 0b1 and " 7". */
function integerOf(text: string): number {
  return /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
}

/**
 * An integer. Its range is checked by the library, which names the flag, except for integers beyond 2^53:
 * Number() would silently round those to another integer, so they are refused here, with the range.
 */
function integer(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: unknown): number => {
    const text = given(flag, raw);
    const n = integerOf(text);
    if (!Number.isInteger(n)) throw new UserError(`${flag} ${text}: must be an integer`);
    if (!Number.isSafeInteger(n)) throw new UserError(`${flag} ${text}: out of range; must be from ${min} to ${max}`);
    return n;
  };
}

function withAuto(parse: () => number): number {
  try {
    return parse();
  } catch (err) {
    if (err instanceof UserError && err.message.endsWith('must be an integer'))
      throw new UserError(`${err.message} or auto`);
    throw err;
  }
}

/** A number written in decimal (1e-3 and Infinity included): Number() alone would also take 0x10 and 0b1. */
function number(flag: string) {
  return (raw: unknown): number => {
    const text = given(flag, raw);
    const n = /^[+-]?0[xob]/i.test(text) ? NaN : Number(text);
    if (Number.isNaN(n)) throw new UserError(`${flag} ${text}: must be a number`);
    return n;
  };
}

/** A comma-separated list of positive integers, e.g. --threads 1,2,4 or --layers 784,128,64,10. */
function integerList(flag: string, minLength: number, example: string, max = Number.MAX_SAFE_INTEGER) {
  return (raw: unknown): number[] => {
    const text = given(flag, raw);
    const parts = text.split(',').map((s) => s.trim());
    const values = parts.map((s) => integerOf(s));
    const over = parts.find((_, i) => Number.isInteger(values[i]) && values[i] > max);
    if (over !== undefined)
      throw new UserError(`${flag} ${text}: ${over} is out of range; each must be from 1 to ${max}`);
    if (values.length < minLength || values.some((n) => !Number.isSafeInteger(n) || n < 1)) {
      const what = minLength > 1 ? `${minLength} or more positive integers` : 'positive integers';
      throw new UserError(`${flag} ${text}: must be ${what} separated by commas, e.g. ${example}`);
    }
    return values;
  };
}

/** A list of names from `choices` for sweep's grid: --optimizer sgd,adam. */
function nameList(flag: string, choices: readonly string[]) {
  return (raw: unknown): string[] => {
    const text = given(flag, raw);
    const values = text.split(',').map((s) => s.trim());
    const bad = values.find((v) => !choices.includes(v));
    if (bad !== undefined)
      throw new UserError(`${flag} ${text}: ${bad === '' ? 'an empty name' : bad} is not one of ${choices.join(', ')}`);
    return [...new Set(values)];
  };
}

/** A list of integers ≥ min for sweep's grid, with ranges: --seed 0..7, --seed 0,3,10..12. */
function integerRangeList(flag: string, min: number) {
  return (raw: unknown): number[] => {
    const text = given(flag, raw);
    const refuse = () =>
      new UserError(
        `${flag} ${text}: must be integers from ${min} or ranges A..B, separated by commas, e.g. 0..7 or 0,3,5`,
      );
    const values = text.split(',').flatMap((part) => {
      const range = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(part);
      const single = integerOf(part.trim());
      const [from, to] = range ? [Number(range[1]), Number(range[2])] : [single, single];
      if (range && to < from)
        throw new UserError(`${flag} ${text}: the range ${from}..${to} runs backwards; write ${to}..${from}`);
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < min) throw refuse();
      if (to - from >= 100_000) throw new UserError(`${flag} ${text}: at most 100000 values in a range`);
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    });
    return [...new Set(values)];
  };
}

/** A list of numbers for sweep's grid: --lr 0.1,0.5 (each checked by the library, which names the flag). */
function numberList(flag: string) {
  return (raw: unknown): number[] => {
    const text = given(flag, raw);
    const values = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
    if (values.some(Number.isNaN))
      throw new UserError(`${flag} ${text}: must be numbers separated by commas, e.g. 0.1,0.5`);
    return [...new Set(values)];
  };
}
