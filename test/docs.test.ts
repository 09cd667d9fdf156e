import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const PAGES = [
  'README.md',
  'ARCHITECTURE.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];

/** A page's text without its fenced code blocks, where a `](…)` is code, not a link. */
function prose(page: string): string {
  return readFileSync(join(ROOT, page), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), each space a hyphen. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

function anchors(page: string): Set<string> {
  return new Set([...prose(page).matchAll(/^#{1,6} (.*)$/gm)].map((m) => slug(m[1])));
}

/** Every relative link of a page (images included): the target path and its #anchor, if any. */
function relativeLinks(page: string): { target: string; path: string; anchor?: string }[] {
  return [...prose(page).matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1])
    .filter((target) => !/^[a-z]+:/i.test(target))
    .map((target) => {
      const [path, anchor] = target.split('#');
      return { target, path, anchor };
    });
}

describe('the README and docs/', () => {
  it('the README is a front door: at most 300 lines', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(300);
  });

  it.each(PAGES)(
    'every relative link in %s points at a file that exists (and a heading, for an #anchor into a page)',
    (page) => {
      const broken: string[] = [];
      for (const { target, path, anchor } of relativeLinks(page)) {
        const file = path === '' ? join(ROOT, page) : resolve(ROOT, dirname(page), path);
        if (!existsSync(file)) {
          broken.push(`${target}: no file ${relative(ROOT, file)}`);
          continue;
        }
        if (anchor !== undefined && file.endsWith('.md') && !anchors(relative(ROOT, file)).has(anchor)) {
          broken.push(`${target}: no heading #${anchor} in ${relative(ROOT, file)}`);
        }
      }
      expect(broken).toEqual([]);
    },
  );

  it("docs/README.md lists every page of docs/ and each page's sections (## headings), and the README's table every page", () => {
    const index = new Set(relativeLinks('docs/README.md').map((l) => l.target));
    const table = new Set(relativeLinks('README.md').map((l) => l.path));
    const missing: string[] = [];
    for (const page of PAGES.filter((p) => p.startsWith('docs/') && p !== 'docs/README.md')) {
      const name = page.slice('docs/'.length);
      if (!index.has(name)) missing.push(`docs/README.md: ${name}`);
      if (!table.has(page)) missing.push(`README.md: ${page}`);
      for (const [, heading] of prose(page).matchAll(/^## (.*)$/gm))
        if (!index.has(`${name}#${slug(heading)}`)) missing.push(`docs/README.md: ${name}#${slug(heading)}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('no merge left half done', () => {
  it('no conflict markers in the docs or the sources', () => {
    const files = [
      'README.md',
      'ARCHITECTURE.md',
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const marked = files.filter((f) => /^(<{7} |={7}$|>{7} )/m.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(marked).toEqual([]);
  });
});
