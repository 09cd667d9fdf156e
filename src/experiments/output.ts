import { existsSync } from 'node:fs';
import { stringify } from 'csv-stringify/sync';
import type { TopLevelSpec } from 'vega-lite';
import { UserError } from '../errors.js';
import { checkWritable, refuseDirectory, writeFileAtomic } from '../fs/atomic-write.js';

/**
 * Files the experiments write (CSV tables, SVG charts, traces): checked before any run starts, so that a
 * typo costs nothing, and written atomically at the end. An existing file is replaced only with --force.
 */
export function checkOutput(path: string | undefined, flag: string, force: boolean): void {
  if (path === undefined) return;
  // Each flag writes one format: a chart named .png would be SVG text under a picture's name.
  const ext = { '--svg': '.svg', '--csv': '.csv', '--save-trace': '.json' }[flag];
  if (ext !== undefined && !path.toLowerCase().endsWith(ext))
    throw new UserError(`${flag} ${path}: writes ${ext.slice(1).toUpperCase()}; name a ${ext} file`);
  // A directory is no file to replace: said before --force is offered.
  refuseDirectory(path, flag);
  if (existsSync(path) && !force) throw new UserError(`${flag} ${path}: exists; pass --force to replace it`);
  checkWritable(path, flag);
}

export function writeOutput(path: string, text: string): void {
  writeFileAtomic(path, new TextEncoder().encode(text));
}

/** CSV with a header; an absent value (undefined, null, NaN) is an empty field. */
export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const cell = (v: unknown) => (v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v)) ? '' : v);
  return stringify(
    rows.map((r) => columns.map((c) => cell(r[c]))),
    { header: true, columns },
  );
}

/** A vega-lite chart rendered to SVG text, headless (no canvas, no browser). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded here: vega and vega-lite take longer to load than the rest of the CLI, and few runs draw.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
