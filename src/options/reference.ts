/**
 * The flag reference in docs/cli-flags.md, made from the option table: one section per command, its flags
 * grouped as the table groups them. `npm run docs:flags` writes it; a test fails when the file is out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS, flagOf, GROUPS, optionsOf, positionalName, shownDefault, specFor, type Command, type OptionGroup } from './table.js';

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The whole page, as markdown. */
export function flagReference(): string {
  const lines = [
    '# Flag reference',
    '',
    '<!-- Made by `npm run docs:flags` from src/options/table.ts; edit the table, not this file. -->',
    '',
    'Every command, its arguments and flags, their kinds and defaults. A training setting has the same name in the',
    'library (`train({ batchSize: 128 })`) and in a `--config` file, camelCased. Guides: [cli.md](cli.md).',
    '',
  ];
  for (const command of Object.keys(COMMANDS) as Command[]) {
    const { usage, help } = COMMANDS[command];
    lines.push(`## ${command}`, '', `\`lockstep ${usage}\`: ${help}.`, '');
    const names = optionsOf(command);
    for (const group of Object.keys(GROUPS) as OptionGroup[]) {
      const inGroup = names.filter((name) => specFor(name, command).group === group);
      if (inGroup.length === 0) continue;
      lines.push(`**${GROUPS[group]}**`, '', '| flag | kind | default | what it does |', '| --- | --- | --- | --- |');
      for (const name of inGroup) {
        const spec = specFor(name, command);
        const flag = spec.positional ? `\`<${positionalName(name)}>\`` : `\`${flagOf(name)}\``;
        const kind = spec.choices && spec.kind !== 'list' ? spec.choices.join(' | ') : spec.kind;
        const shown = shownDefault(spec);
        lines.push(`| ${flag} | ${cell(kind)} | ${shown === undefined ? (spec.required ? 'required' : '') : cell(shown)} | ${cell(spec.help)} |`);
      }
      lines.push('');
    }
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

// `node dist/src/options/reference.js FILE` writes the page.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2]) writeFileSync(process.argv[2], flagReference());
