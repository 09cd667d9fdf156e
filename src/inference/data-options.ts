import { UserError } from '../errors.js';
import { describe } from '../words.js';

/** The split (test by default) and the data path that evaluate and predict read, checked; `caller` names the function. */
export function checkSplitAndData(options: { split?: unknown; data?: unknown }, caller: string): 'train' | 'test' {
  const split = options.split ?? 'test';
  if (split !== 'train' && split !== 'test') throw new UserError(`--split ${String(split)}: must be train or test`);
  if (options.data !== undefined && typeof options.data !== 'string')
    throw new UserError(`${caller}: data must be a path; got ${describe(options.data)}`);
  return split;
}
