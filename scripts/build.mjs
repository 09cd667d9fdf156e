// npm run build: the wasm kernels, the native kernels and the TypeScript. A step whose output is newer than all
// its inputs is skipped and tsc is incremental, so a second build (npm test's, or the one npx's first run starts
// through `prepare`) takes seconds. `npm run build -- --force` builds everything again.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const force = process.argv.includes('--force');

/** The newest modification time among these files and the files directly in these folders. */
function newest(paths) {
  let t = 0;
  for (const p of paths) {
    const path = join(root, p);
    const stat = statSync(path);
    const files = stat.isDirectory() ? readdirSync(path).map((f) => statSync(join(path, f))) : [stat];
    for (const s of files) if (s.isFile()) t = Math.max(t, s.mtimeMs);
  }
  return t;
}

/** Whether `output` exists and is newer than every input. */
function fresh(output, inputs) {
  const path = join(root, output);
  return !force && existsSync(path) && statSync(path).mtimeMs > newest(inputs);
}

/** Whether some TypeScript source (tsconfig.json's include, less its exclude) has no .js in dist/. */
function missingOutputs() {
  const sources = ['src', 'workers', 'bench'].flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true }).map((f) => join(dir, String(f))),
  );
  return sources
    .filter((f) => f.endsWith('.ts') && !/^(src\/kernels\/assembly|bench\/ceiling)\//.test(f))
    .some((f) => !existsSync(join(root, 'dist', f.replace(/\.ts$/, '.js'))));
}

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (fresh('dist/kernels.wasm', ['src/kernels/assembly', 'node_modules/assemblyscript/package.json'])) {
  process.stdout.write('wasm kernels up to date: dist/kernels.wasm\n');
} else {
  const asc = join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
  run([asc, 'src/kernels/assembly/index.ts', '--config', 'src/kernels/assembly/asconfig.json']);
}

// A failed native build leaves no addon, so it is tried again each time (it fails in a second without a compiler).
if (fresh('native/build/Release/lockstep.node', ['native'])) {
  process.stdout.write('native kernels up to date: native/build/Release/lockstep.node\n');
} else {
  run([join(root, 'native', 'build.mjs')]);
}

// tsc's incremental state does not notice an output deleted since (rm -rf dist/src/train): then, or with
// --force, it starts over.
const buildInfo = join(root, 'dist', 'tsconfig.tsbuildinfo');
if (force || missingOutputs()) rmSync(buildInfo, { force: true });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
run([tsc, '-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', buildInfo]);
chmodSync(join(root, 'dist', 'src', 'cli', 'main.js'), 0o755);
