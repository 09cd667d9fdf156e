import { verify, type VerifyRow } from '../experiments/verify.js';
import { loadTrainingData, resolveConfig } from '../train/config.js';
import { UserError } from '../errors.js';
import { print, toTrainOptions, type TrainingArgs } from './flags.js';

export interface VerifyArgs extends Omit<TrainingArgs, 'threads'> {
  threads: number[];
  steps: number;
}

export const EXIT_NOT_IDENTICAL = 4;

export async function verifyCommand(args: VerifyArgs): Promise<number> {
  if (args.steps < 1) throw new UserError(`--steps ${args.steps}: must be at least 1`);
  const options = toTrainOptions({ ...args, threads: 1 });
  for (const threads of args.threads) resolveConfig({ ...options, threads });
  const dataset = loadTrainingData(resolveConfig(options));
  if (!args.json) {
    print(`lockstep verify: ${args.steps} steps at threads ${args.threads.join(', ')} against the reference trainer, every parameter compared bit for bit`);
    print('threads    kernels  paramsSha256                                                      max|Δ|    max ULP  first difference');
  }
  const rows = await verify({ ...options, threadCounts: args.threads, steps: args.steps }, dataset, (row) =>
    print(args.json ? JSON.stringify({ event: 'verify', ...row }) : formatRow(row)),
  );
  const allEqual = rows.every((r) => r.equal);
  if (!args.json) print(allEqual ? 'all identical' : 'NOT IDENTICAL');
  return allEqual ? 0 : EXIT_NOT_IDENTICAL;
}

function formatRow(r: VerifyRow): string {
  return (
    `${String(r.threads).padEnd(9)}  ${r.kernels.padStart(7)}  ${r.paramsSha256}  ${r.maxAbsDiff.toExponential(2).padStart(8)}  ` +
    `${String(r.maxUlp).padStart(9)}  ${r.firstDifference ?? '-'}`
  );
}
