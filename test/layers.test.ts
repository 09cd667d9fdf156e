import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

/** The layers, lowest first: a module may import its own layer and those below, never one above. */
const LAYERS: string[][] = [
  [
    'src/errors.ts',
    'src/words.ts',
    'src/stable-json.ts',
    'src/flag.ts',
    'src/paths.ts',
    'src/packages.ts',
    'src/fs',
    'src/random',
    'src/memory',
  ],
  ['src/model', 'src/optim'],
  ['src/kernels', 'src/data'],
  ['src/shared'],
  ['src/coordinator', 'workers'],
  ['src/model-io'],
  ['src/options'],
  ['src/inference', 'src/train'],
  ['src/experiments', 'src/web'],
  ['src/queue'],
  ['src/cli', 'src/index.ts', 'src/internals.ts'],
];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.parentPath.includes('assembly'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Each module's value imports (a type-only import costs nothing at run time and makes no circle). */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+'(\.[^']+)'/gms)].map((m) =>
    normalize(join(dirname(file), m[1])).replace(/\.js$/, '.ts'),
  );
}

const layerOf = (file: string) =>
  LAYERS.findIndex((names) => names.some((n) => file === n || file.startsWith(`${n}/`)));

describe('the source folders are layers', () => {
  const files = [...sources('src'), ...sources('workers')];
  const graph = new Map(files.map((f) => [f, imports(f)]));

  it('every module belongs to a layer', () => {
    expect(files.filter((f) => layerOf(f) < 0)).toEqual([]);
  });

  it('no import runs up a layer', () => {
    const upward = [...graph].flatMap(([from, tos]) =>
      tos.filter((to) => layerOf(to) > layerOf(from)).map((to) => `${from} -> ${to}`),
    );
    expect(upward).toEqual([]);
  });

  it('no module imports itself round a circle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(circles).toEqual([]);
  });
});
