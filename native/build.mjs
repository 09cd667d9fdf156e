// Builds the native kernels (node-gyp, Node's own headers, nothing downloaded). A machine that cannot build
// them still installs: the reason goes to native/build/failed.txt, which the default kernels' notice quotes,
// and lockstep runs on wasm.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const failed = join(here, 'build', 'failed.txt');
rmSync(failed, { force: true });

// Node's headers where this node was installed from a package (e.g. /usr/include/node): no download.
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  gyp = process.env.npm_config_node_gyp;
}
const cxx = process.env.CXX || 'c++';
const compiler = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
const result =
  compiler.status !== 0
    ? { status: 1, stdout: '', stderr: `no C++ compiler (${cxx} --version failed)` }
    : gyp
      ? spawnSync(process.execPath, [gyp, 'rebuild', ...nodedir], { cwd: here, encoding: 'utf8' })
      : { status: 1, stdout: '', stderr: 'node-gyp is not installed' };
if (result.status === 0) {
  process.stdout.write('native kernels built: native/build/Release/lockstep.node\n');
} else {
  const lines =
    `${result.stdout ?? ''}\n${result.stderr ?? ''}${result.error ? `\n${result.error.message}` : ''}`.split('\n');
  const first = lines.find(
    (l) =>
      /\berror\b|not found|No such file|no C\+\+ compiler/i.test(l) &&
      !/gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l),
  );
  const reason = (first ?? lines.filter((l) => l.trim()).pop() ?? `exit ${result.status}`)
    .replace(/^gyp ERR! /, '')
    .trim()
    .slice(0, 160);
  mkdirSync(dirname(failed), { recursive: true });
  writeFileSync(failed, `${reason}\n`);
  process.stderr.write(`lockstep: notice: native kernels not built (${reason}); lockstep will use wasm\n`);
}
