import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cpuFlags, runCli, tempDir } from './helpers.js';

/**
 * The avx512 kernels on a CPU without AVX-512: `node native/build.mjs --emulate-avx512 DIR` builds the addon with
 * its avx512 table's intrinsics run as AVX2 code by SIMDe (native/simde-avx512.h), and the bit-identity tests that
 * name their kernel set run again with that addon (LOCKSTEP_TEST_NATIVE_ADDON). Where the CPU has AVX-512F the
 * other test files run the real avx512 kernels instead, and this file skips.
 */

const root = join(import.meta.dirname, '..');
const flags = cpuFlags();
const simde = existsSync('/usr/include/simde/x86/avx512.h');
// CI installs libsimde-dev (.ci/run): there a missing SIMDe fails rather than skips.
const runs = process.arch === 'x64' && flags.has('avx2') && !flags.has('avx512f') && (simde || !!process.env.CI);

/** The tests, by name, that run every native kernel set this process has, or the widest. */
const BIT_IDENTITY = 'avx512 kernels|a layer bigger than the cache|resumes with any other';

describe.skipIf(!runs)('avx512 kernels emulated on AVX2 (SIMDe)', () => {
  let env: Record<string, string>;
  let dir: string;

  beforeAll(() => {
    dir = tempDir();
    const build = spawnSync(process.execPath, [join(root, 'native', 'build.mjs'), '--emulate-avx512', dir], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(build.stderr).toBe('');
    expect(build.status).toBe(0);
    env = { LOCKSTEP_TEST_NATIVE_ADDON: join(dir, 'build', 'Release', 'lockstep.node') };
  }, 300_000);

  it('equal the reference bit for bit: the kernel, engine and resume tests that name their set', () => {
    const report = join(dir, 'report.json');
    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const files = ['test/kernels.test.ts', 'test/engine.test.ts', 'test/optimizers.test.ts'];
    const r = spawnSync(
      process.execPath,
      [vitest, 'run', ...files, '-t', BIT_IDENTITY, '--reporter=json', `--outputFile=${report}`],
      { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, ...env } },
    );
    const results = JSON.parse(readFileSync(report, 'utf8')) as {
      numFailedTests: number;
      testResults: { assertionResults: { fullName: string; status: string }[] }[];
    };
    const passed = results.testResults.flatMap((f) => f.assertionResults).filter((t) => t.status === 'passed');
    const failed = results.testResults.flatMap((f) => f.assertionResults).filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.fullName)).toEqual([]);
    expect(r.status).toBe(0);
    // every kernel suite ran for avx512 (the set this addon has besides avx2), not only for avx2
    expect(passed.filter((t) => t.fullName.startsWith('avx512 kernels')).length).toBeGreaterThan(100);
    // and the resume across kernel kinds, which the pattern names too
    expect(passed.some((t) => t.fullName.includes('resumes with any other'))).toBe(true);
    expect(passed.map((t) => t.fullName)).toContain(
      'the data-parallel engine is bit-identical to the reference trainer a layer bigger than the cache: native and wasm at 1, 2 and 3 threads equal the reference',
    );
  }, 300_000);

  it('lockstep verify: --kernels avx512 at 1, 2, 3 and 5 threads equals the reference trainer (adam, odd layers)', () => {
    const r = runCli(
      [
        'verify',
        ...['--kernels', 'avx512', '--threads', '1,2,3,5', '--layers', '784,33,17,10', '--batch-size', '50'],
        ...['--steps', '25', '--train-limit', '600', '--test-limit', '100', '--optimizer', 'adam', '--lr', '0.01'],
      ],
      { env },
    );
    // nothing but the notice of more threads than cores, where there are fewer than 5
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('lockstep: notice: --threads '))).toEqual([]);
    expect(r.stdout).toMatch(/^5 +avx512 +[0-9a-f]{64} /m);
    expect(r.stdout.trim().split('\n').pop()).toBe('all identical');
    expect(r.code).toBe(0);
  }, 120_000);
});
