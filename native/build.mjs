// Builds the native kernels (node-gyp, Node's own headers, nothing downloaded). A machine that cannot build
// them still installs: the reason goes to native/build/failed.txt, which the default kernels' notice quotes,
// and lockstep runs on wasm.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// Node's headers where this node was installed from a package (e.g. /usr/include/node): no download.
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];

/** node-gyp rebuild in `cwd` (a folder holding binding.gyp and the sources), with gyp variables as `--name=value`. */
function rebuild(cwd, variables = []) {
  let gyp;
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    gyp = process.env.npm_config_node_gyp;
  }
  const cxx = process.env.CXX || 'c++';
  const compiler = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  return compiler.status !== 0
    ? { status: 1, stdout: '', stderr: `no C++ compiler (${cxx} --version failed)` }
    : gyp
      ? spawnSync(process.execPath, [gyp, 'rebuild', ...nodedir, ...variables], { cwd, encoding: 'utf8' })
      : { status: 1, stdout: '', stderr: 'node-gyp is not installed' };
}

/** The first line of a failed build's output that says why. */
function reason(result) {
  const lines =
    `${result.stdout ?? ''}\n${result.stderr ?? ''}${result.error ? `\n${result.error.message}` : ''}`.split('\n');
  const first = lines.find(
    (l) =>
      /\berror\b|not found|No such file|no C\+\+ compiler/i.test(l) &&
      !/gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l),
  );
  return (first ?? lines.filter((l) => l.trim()).pop() ?? `exit ${result.status}`)
    .replace(/^gyp ERR! /, '')
    .trim()
    .slice(0, 160);
}

const emulate = process.argv.indexOf('--emulate-avx512');
if (emulate >= 0) {
  // Tests only: `node native/build.mjs --emulate-avx512 DIR` builds DIR/build/Release/lockstep.node, whose avx512
  // table runs as AVX2 code (native/simde-avx512.h), for a CPU without AVX-512. Needs SIMDe (libsimde-dev).
  const dir = process.argv[emulate + 1];
  if (!dir) {
    process.stderr.write('native/build.mjs: --emulate-avx512 needs a folder\n');
    process.exit(2);
  }
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(here)) if (/\.(cc|h|gyp)$/.test(file)) copyFileSync(join(here, file), join(dir, file));
  const result = rebuild(dir, ['--emulate-avx512=yes']);
  if (result.status !== 0) {
    process.stderr.write(`native/build.mjs: the emulated avx512 build failed: ${reason(result)}\n`);
    process.exit(1);
  }
  process.exit(0);
}

const failed = join(here, 'build', 'failed.txt');
rmSync(failed, { force: true });
const result = rebuild(here);
if (result.status === 0) {
  process.stdout.write('native kernels built: native/build/Release/lockstep.node\n');
} else {
  const why = reason(result);
  // An addon from an earlier build would be loaded, and run kernels older than the sources.
  rmSync(join(here, 'build', 'Release', 'lockstep.node'), { force: true });
  mkdirSync(dirname(failed), { recursive: true });
  writeFileSync(failed, `${why}\n`);
  process.stderr.write(`lockstep: notice: native kernels not built (${why}); lockstep will use wasm\n`);
}
