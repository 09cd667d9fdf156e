/**
 * The library's checks of option values, from their declarations in the table: names it knows, integers in
 * their range, one of the choices. Checks that relate options (--early-stop needs --val-split) stay with the
 * code that owns them (src/train/config.ts, src/optim/optimizer.ts). Messages name the flag.
 */
import { UserError } from '../errors.js';
import { describe } from '../words.js';
import { type Command, flagOf, OPTIONS, optionsOf, type OptionName, type OptionSpec } from './table.js';

/** A value as its flag takes it: a list with commas, a string quoted, an absent one "not set". */
const shown = (v: unknown) =>
  v === undefined
    ? 'not set'
    : typeof v === 'string'
      ? JSON.stringify(v)
      : Array.isArray(v)
        ? v.join(',')
        : typeof v === 'object'
          ? describe(v)
          : String(v);

/** The settings two runs differ in, as `--flag X there, Y here` (none: they agree). */
export function settingsApart(there: Record<string, unknown>, here: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(there), ...Object.keys(here)])]
    .filter((key) => JSON.stringify(there[key]) !== JSON.stringify(here[key]))
    .map((key) => `${flagOf(key)} ${shown(there[key])} there, ${shown(here[key])} here`);
}

/** Refuses a key that is not an option of `scopes` (a typo in a --config file, say). */
export function checkKnown(options: object, scopes: OptionSpec['scope'][], what = 'training option'): void {
  for (const key of Object.keys(options)) {
    const spec = (OPTIONS as Record<string, OptionSpec>)[key];
    if (spec === undefined || !scopes.includes(spec.scope)) throw new UserError(`unknown ${what} "${key}"`);
  }
}

/**
 * verify() and benchmark() take the training options of their command only: one it lacks (a checkpoint, a
 * log, epochs) is refused rather than ignored, and `instead` names the library's own key for a flag it
 * spells otherwise (threads → threadCounts).
 */
export function checkCommandOptions(options: object, command: Command, instead: Record<string, string>): void {
  const own = optionsOf(command);
  for (const key of Object.keys(options)) {
    if (key in instead) throw new UserError(`${command}: ${key}: give ${instead[key]}`);
    if (key in OPTIONS && !own.includes(key as OptionName))
      throw new UserError(`${command}: ${key} is not an option of ${command} (see lockstep ${command} --help)`);
  }
}

/** Refuses counts (of steps, rounds) that are not positive integers; each is named by its flag, e.g. '--steps'. */
export function checkCounts(counts: Record<string, unknown>): void {
  for (const [flag, value] of Object.entries(counts)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
      throw new UserError(`${flag} ${shown(value)}: must be a positive integer`);
  }
}

/** Refuses a list of counts (thread counts, batch sizes) that is empty or not all positive integers. */
export function checkCountList(flag: string, value: unknown, example: string): void {
  if (!Array.isArray(value) || value.length === 0)
    throw new UserError(
      `${flag} ${Array.isArray(value) ? '[]' : shown(value)}: must be a list of positive integers, e.g. [${example}]`,
    );
  for (const n of value) checkCounts({ [flag]: n });
}

/** Checks one value against its declaration: an integer in range, one of the choices, a boolean, a string. */
export function checkValue(name: OptionName, value: unknown): void {
  if (value === undefined) return;
  const spec = OPTIONS[name] as OptionSpec;
  const refuse = (why: string): never => {
    throw new UserError(`${flagOf(name)} ${shown(value)}: ${why}`);
  };
  if (spec.choices && !spec.choices.includes(value as string)) refuse(`must be one of ${spec.choices.join(', ')}`);
  switch (spec.kind) {
    case 'integer': {
      const min = spec.min ?? 0;
      if (spec.auto && value === 'auto') return;
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= (spec.max ?? Infinity))
        return;
      if (spec.max !== undefined) refuse(`must be an integer from ${min} to ${spec.max}`);
      refuse(min === 1 ? 'must be a positive integer' : `must be an integer ≥ ${min}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') refuse('must be true or false');
      return;
    case 'string':
    case 'file':
    case 'directory':
      if (typeof value !== 'string') refuse(spec.kind === 'string' ? 'must be a string' : 'must be a file path');
      return;
    case 'number':
      // Its meaning decides its range, checked where it is known.
      if (typeof value !== 'number') refuse('must be a number');
      return;
    case 'list':
      if (!Array.isArray(value)) refuse(`must be an array${spec.example ? `, e.g. [${spec.example}]` : ''}`);
      return;
    default:
      return;
  }
}
