/**
 * The flag tables of docs/cli.md, made from the option table: for each command, its arguments and flags
 * grouped as the table groups them, between `<!-- flags: COMMAND -->` and `<!-- /flags: COMMAND -->`.
 * `npm run docs:flags` rewrites them; a test fails when they are out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  COMMANDS,
  flagOf,
  GROUPS,
  optionsOf,
  positionalName,
  shownDefault,
  specFor,
  type Command,
  type OptionGroup,
} from './table.js';

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** One command's tables, as markdown. */
export function flagTables(command: Command): string {
  const lines: string[] = [];
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
      lines.push(
        `| ${flag} | ${cell(kind)} | ${shown === undefined ? (spec.required ? 'required' : '') : cell(shown)} | ${cell(spec.help)} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

/** `page` with every command's fenced block replaced by its tables. */
export function withFlagTables(page: string): string {
  return page.replace(/<!-- flags: (\w+) -->\n[\s\S]*?<!-- \/flags: \1 -->/g, (_, command: string) => {
    if (!(command in COMMANDS)) throw new Error(`<!-- flags: ${command} -->: not a command`);
    return `<!-- flags: ${command} -->\n${flagTables(command as Command)}\n<!-- /flags: ${command} -->`;
  });
}

// `node dist/src/options/reference.js FILE` rewrites the page's tables.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2]) {
  writeFileSync(process.argv[2], withFlagTables(readFileSync(process.argv[2], 'utf8')));
}
