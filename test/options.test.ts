import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withFlagTables } from '../src/options/reference.js';
import {
  COMMANDS,
  flagOf,
  OPTIONS,
  optionsOf,
  positionalName,
  type Command,
  type OptionSpec,
} from '../src/options/table.js';
import { resolveConfig } from '../src/train/config.js';
import { readRunConfig } from '../src/train/run-config.js';
import { runCli, tempDir, userErrorOf } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');

describe('the option table: every option declared once', () => {
  it("docs/cli.md's flag tables are what the table makes, one per command (npm run docs:flags rewrites them)", () => {
    const page = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
    expect(page).toBe(withFlagTables(page));
    for (const command of Object.keys(COMMANDS)) expect(page).toContain(`<!-- flags: ${command} -->\n**`);
  });

  it("each command's --help lists exactly the table's flags for it", () => {
    for (const command of Object.keys(COMMANDS) as Command[]) {
      const help = runCli([command, '--help']).stdout;
      const listed = new Set([...help.matchAll(/^\s{2}(--[a-z0-9-]+)/gm)].map((m) => m[1]));
      for (const own of ['--help', '--version', '--debug']) listed.delete(own);
      const declared = optionsOf(command)
        .filter((name) => !(OPTIONS[name] as OptionSpec).positional)
        .map((name) => flagOf(name));
      expect([...listed].sort(), command).toEqual(declared.sort());
      for (const name of optionsOf(command).filter((n) => (OPTIONS[n] as OptionSpec).positional))
        expect(help, command).toContain(`  ${positionalName(name)}`);
    }
  }, 60_000);

  it('the library checks a value from its declaration and names the flag', () => {
    const refused = (options: object) => userErrorOf(() => resolveConfig(options));
    expect(refused({ evalEvery: 0 })).toBe('--eval-every 0: must be a positive integer');
    expect(refused({ warmupSteps: -1 })).toBe('--warmup-steps -1: must be an integer ≥ 0');
    expect(refused({ threads: 129 })).toBe('--threads 129: must be an integer from 1 to 128');
    expect(refused({ scale: 'log' })).toBe('--scale "log": must be one of standard, minmax, 255, none');
    expect(refused({ trainEval: 'no' })).toBe('--train-eval "no": must be true or false');
    expect(refused({ batchSise: 64 })).toBe('unknown training option "batchSise"');
  });

  it('a --config file holds settings only: a file option of the invocation is refused, naming the file', () => {
    const file = join(tempDir(), 'run.json');
    writeFileSync(file, JSON.stringify({ seed: 3, checkpoint: 'x.ckpt' }));
    expect(() => readRunConfig(file)).toThrow(`${file}: unknown training option "checkpoint"`);
    writeFileSync(file, JSON.stringify({ seed: 3, batchSize: 32 }));
    expect(readRunConfig(file)).toEqual({ seed: 3, batchSize: 32 });
  });
});
