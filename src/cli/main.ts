#!/usr/bin/env node
/**
 * The `lockstep` command: a thin yargs layer over the library API (src/index.ts). Each command parses its
 * flags (src/cli/flags.ts), calls library functions, and prints text or JSON lines.
 *
 * Exit codes: 0 success; 1 a failure of the run (a worker died, an internal error); 2 bad input (a flag, a
 * file, a checkpoint); 3 training diverged; 4 `verify` found a difference; 130 interrupted by SIGINT or
 * SIGTERM. Errors are one line on stderr; --debug adds the stack.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import {
  commandFlags,
  flag,
  hideYargsTypes,
  refuseMissingValues,
  refuseSwitchValues,
  skipEagerHelp,
  switchesOf,
  valuedOf,
  usageMessage,
} from './flags.js';
import { EXIT_FAILURE, UserError } from '../errors.js';
import { COMMANDS, type Command } from '../options/table.js';
import { packageVersion } from '../paths.js';

// Each command's module is loaded only when it runs: together they take longer to load than most commands take.
// biome-ignore lint/suspicious/noExplicitAny: yargs' parsed arguments, typed by each command's own Args
type Action = (args: any) => Promise<number>;
const ACTIONS: Record<Command, () => Promise<Action>> = {
  train: () => import('./train-command.js').then((m) => m.trainCommand),
  verify: () => import('./verify-command.js').then((m) => m.verifyCommand),
  eval: () => import('./model-commands.js').then((m) => m.evalCommand),
  predict: () => import('./model-commands.js').then((m) => m.predictCommand),
  export: () => import('./model-commands.js').then((m) => m.exportCommand),
  serve: () => import('./serve-command.js').then((m) => m.serveCommand),
  bench: () => import('./bench-command.js').then((m) => m.benchCommand),
  sweep: () => import('./sweep-command.js').then((m) => m.sweepCommand),
  worker: () => import('./worker-command.js').then((m) => m.workerCommand),
  plot: () => import('./plot-command.js').then((m) => m.plotCommand),
  data: () => import('./data-command.js').then((m) => m.dataCommand),
};

/**
 * stdout closed early (`lockstep train | head -1`) is the reader's choice: stop quietly. Any other write
 * error (a full disk behind `>`) is one line and exit code 1.
 */
function exitOnStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`lockstep: cannot write to stdout (${err.code ?? err.message})\n`);
  process.exit(EXIT_FAILURE);
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', exitOnStdoutError);
  const debug = argv.includes('--debug');
  let exitCode = 0;
  const run = (command: Command, args: unknown) =>
    ACTIONS[command]()
      .then((action) => action(args))
      .then((code) => void (exitCode = code));
  try {
    let cli = skipEagerHelp(hideYargsTypes(yargs(argv)))
      .scriptName('lockstep')
      .usage(
        '$0 <command> [options]\n\nData-parallel MLP training on CPU threads, bit-identical for any thread count.',
      );
    for (const command of Object.keys(COMMANDS) as Command[]) {
      const { usage, help } = COMMANDS[command];
      cli = cli.command(
        usage,
        help,
        (y) => commandFlags(y, command),
        (args) => run(command, args),
      );
    }
    await cli
      .option('debug', flag('boolean', { type: 'boolean', default: false, describe: 'print stack traces of errors' }))
      .middleware((_args, y?: unknown) => {
        refuseSwitchValues(argv, switchesOf(y));
        refuseMissingValues(argv, valuedOf(y));
      }, true)
      .demandCommand(1, 'name a command: lockstep --help')
      .recommendCommands()
      .strict()
      .help('help', flag('boolean', { describe: 'show help' }).describe as string)
      .version('version', flag('boolean', { describe: "show lockstep's version" }).describe as string, packageVersion())
      .wrap(Math.min(120, process.stdout.columns ?? 120))
      .fail((msg, err) => {
        // yargs reports bad flags (including our coerce functions' refusals) as YError: a usage error.
        if (!err || err.name === 'YError')
          throw new UserError(usageMessage((msg ?? err.message).replace(/\s*\n\s*/g, ' '), argv));
        throw err;
      })
      .parseAsync();
    return exitCode;
  } catch (err) {
    const e = err as Error;
    const internal = !(err instanceof UserError) && e?.name !== 'WorkerFailure';
    // One line, whatever the message quotes (a parser's message may hold the file's own newlines).
    const message = (e?.message ?? String(err)).replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`lockstep: ${internal ? 'internal error: ' : ''}${message}\n`);
    if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
    return err instanceof UserError ? err.exitCode : EXIT_FAILURE;
  }
}

main(hideBin(process.argv)).then((code) => {
  process.exitCode = code;
});
