import type { Argv, Options, PositionalOptions } from 'yargs';
import { UserError } from '../errors.js';
import { nativeMissingNotice } from '../kernels/select.js';
import { wasmSimdSupported } from '../kernels/wasm.js';
import { parserFor } from '../options/parse.js';
import {
  flagOf,
  optionsOf,
  positionalName,
  shownDefault,
  specFor,
  type Command,
  type OptionKind,
  type OptionName,
} from '../options/table.js';
import type { TrainOptions } from '../train/config.js';

const asFlag = (name: string): string => (name.length === 1 ? `-${name}` : `--${name}`);

/**
 * yargs' own usage errors, reworded to name the flag or argument the way lockstep's other errors do.
 * `argv` is the command line as typed; its first word that is not a flag is the command. Messages it does not
 * know pass through unchanged.
 */
export function usageMessage(message: string, argv: string[]): string {
  const command = argv.find((token) => !token.startsWith('-'));
  const where = command ? `\`${command}\`` : 'this command';
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  if (unknown) {
    const names = unknown[1].split(', ');
    // yargs lists --max-steps as both "max-steps" and "maxSteps"; keep the spelling that was typed.
    const kebab = (name: string) => flagOf(name).slice(2);
    const typed = names.filter((name) => name === kebab(name) || !names.includes(kebab(name)));
    // The flag as typed (yargs reports --no-jsn as "jsn"); none for a stray word (`--json yes`, `train extra`),
    // which yargs names the same way as an unknown flag.
    const spelling = (name: string) =>
      argv
        .find((t) => t.startsWith('-') && [name, `no-${name}`].includes(t.replace(/^--?/, '').split('=')[0]))
        ?.split('=')[0];
    const words = typed.filter((name) => spelling(name) === undefined && argv.includes(name));
    if (words.length > 0) return unexpectedWord(words[0], argv, command);
    return `${typed.map((name) => spelling(name) ?? asFlag(name)).join(', ')}: not a flag of ${where} (see --help)`;
  }
  // A flag before any command (lockstep --versio): name it, not only the missing command.
  const first = argv[0]?.split('=')[0];
  if (
    /^name a command/.test(message) &&
    first?.startsWith('-') &&
    !['--debug', '--help', '--version'].includes(first)
  ) {
    return `${first}: not a flag of lockstep; name a command first (see lockstep --help)`;
  }
  const guess = /^Did you mean (\S+)\?$/.exec(message);
  if (guess) return `${command}: not a command of lockstep; did you mean ${guess[1]}? (see lockstep --help)`;
  const choice = /^Invalid values: Argument: (\S+), Given: (?:"(.*)"|([^,]*)), Choices: (.*)$/.exec(message);
  if (choice) {
    const given = choice[2] ?? choice[3];
    const one = given.includes(',') ? ' (one value)' : '';
    return `--${choice[1]} ${given}: must be one of ${choice[4].replace(/"/g, '')}${one}`;
  }
  const required = /^Missing required arguments?: (.*)$/.exec(message);
  if (required) return `${required[1].split(', ').map(asFlag).join(', ')}: required by ${where} (see --help)`;
  if (/^Not enough non-option arguments/.test(message)) {
    const file = command === 'export' ? 'CHECKPOINT file' : 'MODEL file (a checkpoint or a .safetensors model)';
    return `${where} needs a ${file} as its first argument`;
  }
  return message;
}

/** A word on the command line that is neither a flag, a flag's value nor an argument the command takes. */
function unexpectedWord(word: string, argv: string[], command: string | undefined): string {
  if (word === command) return `${word}: not a command of lockstep (see lockstep --help)`;
  const before = argv[argv.indexOf(word) - 1];
  const after = before?.startsWith('--') && !before.includes('=') ? ` (${before} takes no value)` : '';
  return `${word}: unexpected argument to \`${command}\`${after}`;
}

/**
 * A yargs option with its kind, choices and default written into its --help line. Numeric flags are parsed
 * as strings (so that messages repeat what was typed), and yargs would label them [string]: the CLI hides
 * yargs' own labels (`hide-types`) and shows these instead.
 */
export function flag<O extends Options | PositionalOptions>(kind: OptionKind, option: O): O {
  const described = 'defaultDescription' in option ? option.defaultDescription : undefined;
  const shown = described ?? (option.default === undefined ? undefined : String(option.default));
  const extras = [
    `[${kind}]`,
    option.demandOption ? '[required]' : '',
    option.choices ? `[choices: ${[option.choices].flat().join(', ')}]` : '',
    shown === undefined ? '' : `[default: ${shown}]`,
  ];
  return { ...option, describe: [option.describe, ...extras].filter(Boolean).join(' ') };
}

/** `command`'s option `name` as yargs takes it: parsed by the table's parser, its default given only where the command owns it. */
function yargsOption(name: OptionName, command: Command): Options {
  const spec = specFor(name, command);
  const option: Options = { type: spec.kind === 'boolean' ? 'boolean' : 'string', describe: spec.help };
  const coerce = parserFor(name, spec);
  if (coerce) option.coerce = coerce;
  if (spec.choices && spec.kind !== 'list') option.choices = [...spec.choices];
  if (spec.required) option.demandOption = true;
  // A run setting left out stays undefined (the library's default, or a resumed run's own); the command's own flags get theirs here.
  const variant = spec.commands[command];
  const own = spec.scope === 'config' ? (typeof variant === 'object' ? variant.default : undefined) : spec.default;
  if (own !== undefined) option.default = own;
  const shown = shownDefault(spec);
  if (shown !== undefined && own === undefined) option.defaultDescription = shown;
  return flag(spec.kind, option);
}

/** Every option of `command`, from the table (src/options/table.ts), in its order. */
export function commandFlags<T>(y: Argv<T>, command: Command): Argv<T> {
  let flags = y;
  for (const name of optionsOf(command)) {
    const option = yargsOption(name, command);
    const positional = specFor(name, command).positional;
    const key = flagOf(positional ? positionalName(name) : name).slice(2);
    flags = positional ? flags.positional(key, option as PositionalOptions) : flags.option(key, option);
  }
  return flags;
}

/**
 * The training options among `command`'s parsed flags: those it takes as one value (a grid's lists are the
 * command's to expand).
 */
export function trainOptionsOf(args: Record<string, unknown>, command: Command): TrainOptions {
  const options: Record<string, unknown> = {};
  for (const name of optionsOf(command)) {
    const spec = specFor(name, command);
    if (spec.scope === 'cli' || spec.list !== undefined || args[name] === undefined) continue;
    options[name] = args[name];
  }
  return options as TrainOptions;
}

/** Says on stderr when the default kernels fall back: called once the flags are checked, so an error stays one line. */
export function sayKernelFallback(options: TrainOptions): void {
  const fallback = kernelFallbackNotice(options, wasmSimdSupported());
  if (fallback) notice(fallback);
}

/** yargs 18 methods that @types/yargs 17 does not declare. */
interface Yargs18 {
  usageConfiguration(config: { 'hide-types': boolean }): unknown;
  getOptions(): { boolean: string[]; string: string[] };
  getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } };
}

/**
 * yargs formats a command's whole help text before running it, in case the command later asks for it (ours
 * never do: their errors are one line); skipping that saves ~60 ms of every command's start.
 */
export function skipEagerHelp<T>(y: Argv<T>): Argv<T> {
  (y as unknown as Yargs18).getInternalMethods().getUsageInstance().cacheHelpMessage = () => {};
  return y;
}

/** Hides yargs' type labels in --help: each flag's description carries its own (see `flag`). */
export function hideYargsTypes<T>(y: Argv<T>): Argv<T> {
  (y as unknown as Yargs18).usageConfiguration({ 'hide-types': true });
  return y;
}

/** The boolean flags of the command being parsed (`y` is the yargs instance a middleware receives). */
export function switchesOf(y: unknown): string[] {
  return (y as Yargs18).getOptions().boolean;
}

/** The command's flags that take a value. */
export function valuedOf(y: unknown): string[] {
  return (y as Yargs18).getOptions().string;
}

/**
 * yargs gives a flag written without its value (`--threads --steps 3`) its default, silently, where it has
 * one: refused, as the parsers refuse one at the end of the line.
 */
export function refuseMissingValues(argv: string[], valued: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') return;
    const name = /^--([^=]+)$/.exec(argv[i])?.[1];
    if (name === undefined || !valued.includes(name)) continue;
    const next = argv[i + 1];
    // yargs takes a next word that starts with - as the value only when it is a plain number (-1, -0.5).
    if (next !== undefined && !(next.startsWith('-') && !/^-(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$/i.test(next))) continue;
    const hint = next !== undefined && /^-[\d.]/.test(next) ? ` (a value that starts with -: --${name}=${next})` : '';
    throw new UserError(`--${name}: needs a value${hint}`);
  }
}

/**
 * yargs reads `--json=yes` as false, silently: a switch given a value other than true or false is refused.
 * `switches` are the command's boolean flags.
 */
export function refuseSwitchValues(argv: string[], switches: string[]): void {
  for (const token of argv) {
    if (token === '--') return;
    const m = /^--(no-)?([^=]+)=(.*)$/.exec(token);
    if (m && switches.includes(m[2]) && (m[1] || (m[3] !== 'true' && m[3] !== 'false'))) {
      throw new UserError(`${token}: --${m[2]} is a switch and takes no value (give --${m[2]}, or --${m[2]}=false)`);
    }
  }
}

/**
 * The one-line notice when the default kernels fall back (none when the user chose): native kernels not
 * built, or no WebAssembly SIMD either.
 */
export function kernelFallbackNotice(args: Pick<TrainOptions, 'kernels' | 'reference'>, simd: boolean): string | null {
  if (args.kernels !== undefined || args.reference) return null;
  if (!simd) return 'this runtime has no WebAssembly SIMD; using the js kernels (same results, slower)';
  return nativeMissingNotice();
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A remark on stderr that does not stop the command: `lockstep: notice: …`. */
export function notice(line: string): void {
  process.stderr.write(`lockstep: notice: ${line}\n`);
}
