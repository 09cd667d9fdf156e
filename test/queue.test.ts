import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePort, startRedis, type LocalRedis } from '../bench/redis-server.js';
import { IDX_FILES } from '../src/data/dataset.js';
import { packageVersion } from '../src/paths.js';
import { bullmq, QUEUE_NAME } from '../src/queue/jobs.js';
import {
  processesWith,
  runCli,
  SLOW_TEST_TIMEOUT,
  startCli,
  tempDir,
  writeIdxDir,
  type StartedCli,
} from './helpers.js';

// Issue 23: sweeps on a BullMQ queue in a real redis-server of each test's own (127.0.0.1 only).
const SMALL = ['--train-limit', '2000', '--test-limit', '200', '--epochs', '1'];

async function redis(options: { password?: string; port?: number } = {}): Promise<LocalRedis> {
  const server = await startRedis(options);
  onTestFinished(() => server.stop());
  return server;
}

/** A `lockstep worker` taking runs, once it says so. */
async function worker(url: string): Promise<StartedCli> {
  const w = startCli(['worker', '--queue', url, '--parallel', '1', '--threads', '1']);
  // Pass or fail, the worker ends, then what a SIGKILL would have left of it goes.
  onTestFinished(async () => {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await w.exit;
    killOrphans(w.child.pid!);
  });
  await w.printed(/^lockstep worker \S+: taking runs from /);
  return w;
}

/** Stops a worker the way a user does (Ctrl-C): it finishes its runs and exits 130. */
async function stopWorker(w: StartedCli): Promise<{ stdout: string; stderr: string }> {
  w.child.kill('SIGINT');
  const r = await w.exit;
  expect(r.code, r.stderr).toBe(130);
  return r;
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const runsOf = (stdout: string) => jsonLines(stdout).filter((e) => e.event === 'sweep-run');
const hashByConfig = (rows: Record<string, unknown>[]) =>
  Object.fromEntries(rows.map((r) => [r.config as string, r.paramsSha256 as string]));

describe('lockstep sweep --queue, lockstep worker', () => {
  it(
    '6 runs over 2 worker processes equal the local sweep; the same sweep again enqueues nothing; --status shows the table',
    async () => {
      const { url } = await redis();
      const rest = ['--lr', '0.1,0.5', ...SMALL];
      const grid = ['--seed', '0..2', ...rest];
      const local = runCli(['sweep', ...grid, '--parallel', '2', '--json'], { timeout: SLOW_TEST_TIMEOUT });
      expect(local.code, local.stderr).toBe(0);
      const [a, b] = await Promise.all([worker(url), worker(url)]);
      const out = join(tempDir(), 'results.csv');
      const queued = runCli(['sweep', ...grid, '--queue', url, '--json', '--out', out], { timeout: SLOW_TEST_TIMEOUT });
      expect(queued.code, queued.stderr).toBe(0);
      expect(jsonLines(queued.stdout)[0]).toMatchObject({
        event: 'sweep-queued',
        runs: 6,
        enqueued: 6,
        queued: 0,
        done: 0,
      });
      const rows = runsOf(queued.stdout);
      expect(rows).toHaveLength(6);
      expect(hashByConfig(rows)).toEqual(hashByConfig(runsOf(local.stdout)));
      // Both workers took runs: the grid was spread, not run by one.
      expect(new Set(rows.map((r) => (r.queue as { worker: string }).worker)).size).toBe(2);
      expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(7);

      const again = runCli(['sweep', ...grid, '--queue', url], { timeout: SLOW_TEST_TIMEOUT });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout.split('\n')[0]).toBe(
        `lockstep sweep: 6 runs on the queue ${url}/0: 0 enqueued, 0 already waiting or running, 6 already done`,
      );
      const status = runCli(['sweep', '--seed', '0..3', ...rest, '--queue', url, '--status'], {
        timeout: SLOW_TEST_TIMEOUT,
      });
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(
        `8 runs on the queue ${url}/0: 6 done, 0 running, 0 waiting, 0 failed, 2 not enqueued`,
      );
      expect(status.stdout.split('\n').filter((l) => / sgd .* [0-9a-f]{16}…$/.test(l))).toHaveLength(6);
      // No worker ran anything more than the 6 runs.
      const ran =
        [(await stopWorker(a)).stdout, (await stopWorker(b)).stdout].join('').match(/^run \d+ started/gm) ?? [];
      expect(ran).toHaveLength(6);
    },
    SLOW_TEST_TIMEOUT * 2,
  );

  it(
    'a worker killed with SIGKILL mid-run: its run goes back to the queue and another worker finishes it, with the same hash',
    async () => {
      const { url } = await redis();
      const run = ['--seed', '3', '--train-limit', '20000', '--test-limit', '200', '--epochs', '2'];
      const lost = await worker(url);
      const sweep = startCli(['sweep', ...run, '--queue', url, '--json']);
      await lost.printed(/^run 1 started/);
      lost.child.kill('SIGKILL');
      await lost.exit;
      const other = await worker(url);
      const done = await sweep.exit;
      expect(done.code, done.stderr).toBe(0);
      const [row] = runsOf(done.stdout);
      expect((row.queue as { worker: string }).worker).toMatch(new RegExp(`/${other.child.pid}$`));
      const solo = runCli(['train', ...run, '--threads', '2'], { timeout: SLOW_TEST_TIMEOUT });
      expect(solo.code, solo.stderr).toBe(0);
      const soloHash = /params sha256 ([0-9a-f]{64})/.exec(solo.stdout)![1];
      console.log(
        `killed worker's run, finished by the other: paramsSha256 ${String(row.paramsSha256)}; alone at 2 threads: ${soloHash}`,
      );
      expect(row.paramsSha256).toBe(soloHash);
      await stopWorker(other);
    },
    SLOW_TEST_TIMEOUT * 2,
  );

  it(
    "a worker's run ends with the worker: killed with SIGKILL, it leaves no training process behind",
    async () => {
      const { url } = await redis();
      const lost = await worker(url);
      // The js kernels make a run of some seconds, well past the wait below.
      const sweep = runCli(['sweep', '--seed', '5', '--epochs', '1', '--kernels', 'js', '--queue', url, '--detach']);
      expect(sweep.code, sweep.stderr).toBe(0);
      const runs = () => processesWith(`lockstep-worker-${lost.child.pid}-`);
      const until = async (done: () => boolean, ms: number) => {
        for (const end = Date.now() + ms; !done() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
      };
      await until(() => runs().length === 1, 20_000);
      expect(runs()).toHaveLength(1);
      lost.child.kill('SIGKILL');
      await lost.exit;
      // Its stdin, a pipe from the worker, ends: it exits rather than train on for no one.
      await until(() => runs().length === 0, 3000);
      expect(runs()).toEqual([]);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'a worker whose data file differs or is missing refuses the run, naming the file; the sweep lists it failed; run again, it is retried',
    async () => {
      const { url } = await redis();
      const data = writeIdxDir({ trainCount: 300, testCount: 50 });
      const grid = ['--data', data, '--layers', '16,8,10', '--epochs', '1', '--queue', url];
      const labels = join(data, IDX_FILES.trainLabels);
      const original = readFileSync(labels);
      // The sweep plans with the files here; the worker then finds other bytes at that path, as another machine may hold.
      const failing = startCli(['sweep', ...grid]);
      await failing.printed(/^waiting for /);
      writeFileSync(labels, Buffer.concat([original.subarray(0, 8), Buffer.alloc(original.length - 8, 1)]));
      const w = await worker(url);
      const failed = await failing.exit;
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(
        new RegExp(
          `^lockstep: sweep: 1 of 1 run failed: run 1 \\(.*\\): ${labels}: not the file the run was planned with \\(sha256 [0-9a-f]{16}… here, [0-9a-f]{16}… planned\\); refused\\n$`,
        ),
      );
      // The worker said why in one line, and trained nothing.
      const stopped = await stopWorker(w);
      expect(stopped.stderr).toMatch(
        new RegExp(`^lockstep: run 1 failed: ${labels}: not the file the run was planned with .*; refused$`, 'm'),
      );
      expect(stopped.stdout).not.toMatch(/^run 1 started/m);

      writeFileSync(labels, original);
      const status = runCli(['sweep', ...grid, '--status'], { timeout: SLOW_TEST_TIMEOUT });
      expect(status.stdout).toContain(
        `1 run on the queue ${url}/0: 0 done, 0 running, 0 waiting, 1 failed, 0 not enqueued`,
      );
      expect(status.stdout).toContain(`run 1 failed: ${labels}: not the file the run was planned with`);
      const images = join(data, IDX_FILES.testImages);
      const imagesBytes = readFileSync(images);
      const missing = startCli(['sweep', ...grid, '--seed', '1', '--json']);
      await missing.printed(/"event":"sweep-queued"/);
      rmSync(images);
      const w2 = await worker(url);
      const missed = await missing.exit;
      expect(missed.code).toBe(1);
      expect(missed.stderr).toContain(`: ${images}: no such file on this worker (the run was planned with sha256 `);
      // --json says it on stdout too, as an event.
      expect(jsonLines(missed.stdout).find((e) => e.event === 'sweep-failed')).toMatchObject({ run: 1 });
      writeFileSync(images, imagesBytes);
      // The same files back: the failed run is given another try (--detach: enqueued, not waited for), and finishes.
      const retried = runCli(['sweep', ...grid, '--detach'], { timeout: SLOW_TEST_TIMEOUT });
      expect(retried.code, retried.stderr).toBe(0);
      expect(retried.stdout).toContain('1 enqueued, 0 already waiting or running, 0 already done');
      const waited = runCli(['sweep', ...grid], { timeout: SLOW_TEST_TIMEOUT });
      expect(waited.code, waited.stderr).toBe(0);
      expect(waited.stdout).toMatch(/^ +1 +0 +sgd .* [0-9a-f]{16}…$/m);
      // --status --out collects the finished runs into a results file (a detached sweep's way to get them).
      const collected = join(tempDir(), 'collected.csv');
      const status2 = runCli(['sweep', ...grid, '--status', '--out', collected], { timeout: SLOW_TEST_TIMEOUT });
      expect(status2.code, status2.stderr).toBe(0);
      expect(readFileSync(collected, 'utf8').trim().split('\n')).toHaveLength(2);
      await stopWorker(w2);
    },
    SLOW_TEST_TIMEOUT * 2,
  );

  it(
    'a Redis that restarts (empty) mid-sweep is waited for, with a notice; its lost runs are enqueued again and finish',
    async () => {
      const first = await redis();
      const w = await worker(first.url);
      const sweep = startCli(['sweep', '--seed', '0..3', ...SMALL, '--queue', first.url]);
      await sweep.printed(/^run \d+ \(1\/4 finished/);
      await first.stop();
      await redis({ port: first.port });
      const done = await sweep.exit;
      expect(done.code, done.stderr).toBe(0);
      // How the loss shows (a closed or cut connection, or a refused one) depends on the moment.
      expect(done.stderr).toMatch(
        new RegExp(
          `^lockstep: notice: lost the queue ${first.url}/0 \\((the connection was (cut|closed)|connection refused .*)\\): waiting for it to come back$`,
          'm',
        ),
      );
      expect(done.stderr).toContain(`lockstep: notice: the queue ${first.url}/0 is back\n`);
      expect(done.stdout.split('\n').filter((l) => /^ +\d +\d +sgd .* [0-9a-f]{16}…$/.test(l))).toHaveLength(4);
      await stopWorker(w);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'refuses a malformed URL, an unreachable Redis and a wrong password in one line without the password, exit 2, enqueuing nothing',
    async () => {
      const secret = 's3cret-Pw';
      const { port } = await redis({ password: secret });
      const nobody = await freePort();
      const cases: [string, string][] = [
        [
          'http://127.0.0.1:6379',
          '--queue http://127.0.0.1:6379/: http: is not redis:; give redis://[:PASSWORD@]HOST:PORT[/DB]',
        ],
        [
          'redis://:x@127.0.0.1:1/db',
          '--queue redis://127.0.0.1:1/db: database db is not a number; give redis://[:PASSWORD@]HOST:PORT[/DB]',
        ],
        ['not a url', '--queue not a url: not a URL; give redis://[:PASSWORD@]HOST:PORT[/DB]'],
        // a password with a "/" makes the URL unparseable: still none of it is shown
        [
          `redis://:${secret}/x@127.0.0.1:${port}`,
          `--queue redis://127.0.0.1:${port}: not a URL; give redis://[:PASSWORD@]HOST:PORT[/DB]`,
        ],
        // an unencoded "@" in the password: what follows it would parse as the host, or a path or fragment
        ...[`redis://bob:pa@${secret}/x@127.0.0.1:${port}`, `redis://u:pa@${secret}.example#x@127.0.0.1:${port}`].map(
          (url): [string, string] => [
            url,
            `--queue redis://127.0.0.1:${port}: an @ in the password must be written %40 (a / as %2F, a # as %23); give redis://[:PASSWORD@]HOST:PORT[/DB]`,
          ],
        ),
        [
          `redis://:${secret}%zz@127.0.0.1:${port}`,
          `--queue redis://127.0.0.1:${port}: a % in the user or password that is not %XX (write a % as %25, a / as %2F, a # as %23, an @ as %40); give redis://[:PASSWORD@]HOST:PORT[/DB]`,
        ],
        [
          `redis://:${secret}@127.0.0.1:${nobody}`,
          `--queue redis://127.0.0.1:${nobody}/0: connection refused (is redis-server running there, on that port?)`,
        ],
        [`redis://:wrong-${secret}@127.0.0.1:${port}`, `--queue redis://127.0.0.1:${port}/0: wrong password (or user)`],
        [
          `redis://127.0.0.1:${port}`,
          `--queue redis://127.0.0.1:${port}/0: the server needs a password: give redis://:PASSWORD@HOST:PORT`,
        ],
        [
          `redis://:${secret}@127.0.0.1:${port}/99`,
          `--queue redis://127.0.0.1:${port}/99: no such database on the server`,
        ],
      ];
      for (const [url, message] of cases) {
        for (const command of [
          ['sweep', '--seed', '0..1', ...SMALL, '--queue', url],
          ['worker', '--queue', url],
        ]) {
          const r = runCli(command);
          expect(r.code, `${command.join(' ')}: ${r.stderr}`).toBe(2);
          expect(r.stderr).toBe(`lockstep: ${message}\n`);
          expect(r.stdout).toBe('');
        }
      }
      // Refused after the queue was reached (a bad --out): nothing is on it.
      const other = join(tempDir(), 'other.csv');
      writeFileSync(other, 'run,seed\n1,0\n');
      const url = `redis://:${secret}@127.0.0.1:${port}`;
      expect(runCli(['sweep', '--seed', '0..1', ...SMALL, '--queue', url, '--out', other]).code).toBe(2);
      const status = runCli(['sweep', '--seed', '0..1', ...SMALL, '--queue', url, '--status']);
      expect(status.stdout).toContain(
        `2 runs on the queue redis://127.0.0.1:${port}/0: 0 done, 0 running, 0 waiting, 0 failed, 2 not enqueued`,
      );
      expect(status.stdout + status.stderr).not.toContain(secret);
      // The password alone before the "@", as redis-cli reads it: it connects, and is not shown.
      const bare = runCli([
        'sweep',
        '--seed',
        '0..1',
        ...SMALL,
        '--queue',
        `redis://${secret}@127.0.0.1:${port}`,
        '--status',
      ]);
      expect(bare.code, bare.stderr).toBe(0);
      expect(bare.stdout).toContain(`2 runs on the queue redis://127.0.0.1:${port}/0: `);
      expect(bare.stdout + bare.stderr).not.toContain(secret);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'a worker of another lockstep version gives the run back and stops, naming both; a default spelled out is the same run',
    async () => {
      const { url, port } = await redis();
      // A run as a sweep of another version would have added it.
      const queue = new bullmq.Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port } });
      onTestFinished(() => queue.close());
      const data = { run: 7, config: '{"epochs":1,"seed":0}', dataFiles: {}, version: '0.0.1' };
      await queue.add('run', data, { jobId: 'run-other-version', attempts: 1 });
      const w = startCli(['worker', '--queue', url, '--threads', '1']);
      onTestFinished(() => void w.child.kill('SIGKILL'));
      const r = await w.exit;
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(
        `lockstep: --queue redis://127.0.0.1:${port}/0: run 7 was planned by lockstep 0.0.1, and this worker is lockstep ${packageVersion()}; run the same version on every machine (the run is back on the queue)\n`,
      );
      expect(await queue.getJobState('run-other-version')).toBe('waiting');
      // --lr 0.5, --batch-size 64 and --optimizer sgd are the defaults: the run enqueued without them.
      const sweep = runCli(['sweep', '--seed', '0', ...SMALL, '--queue', url, '--detach']);
      expect(sweep.code, sweep.stderr).toBe(0);
      const spelled = ['--lr', '0.5', '--batch-size', '64', '--optimizer', 'sgd'];
      const status = runCli(['sweep', '--seed', '0', ...SMALL, ...spelled, '--queue', url, '--status']);
      expect(status.stdout).toMatch(/: 0 done, 0 running, 1 waiting, 0 failed, 0 not enqueued/);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'a worker stopped while Redis is down exits: at once when idle, and at a second Ctrl-C mid-run',
    async () => {
      const server = await redis();
      const idle = await worker(server.url);
      const busy = await worker(server.url);
      // The js kernels make a run that lasts well past the Ctrl-Cs below.
      const sweep = runCli([
        'sweep',
        '--seed',
        '5',
        '--epochs',
        '1',
        '--kernels',
        'js',
        '--queue',
        server.url,
        '--detach',
      ]);
      expect(sweep.code, sweep.stderr).toBe(0);
      const waiting = startCli(['sweep', '--seed', '5', '--epochs', '1', '--kernels', 'js', '--queue', server.url]);
      await waiting.printed(/^lockstep sweep: 1 run on the queue/);
      const running = await Promise.race([
        idle.printed(/^run 1 started/).then(() => [idle, busy]),
        busy.printed(/^run 1 started/).then(() => [busy, idle]),
      ]);
      await server.stop();
      await Promise.all([...running, waiting].map((w) => w.printed(/lost the queue/, 'stderr')));
      // The sweep stops waiting at once, its run left on the queue.
      waiting.child.kill('SIGINT');
      expect((await waiting.exit).code).toBe(130);
      running[1].child.kill('SIGINT');
      expect((await running[1].exit).code).toBe(130);
      // One Ctrl-C would wait for the run (its result cannot be handed in until the queue is back); a second
      // stops it, once the first is heard (two signals at once are one).
      running[0].child.kill('SIGINT');
      await running[0].printed(/SIGINT: taking no new run/, 'stderr');
      running[0].child.kill('SIGINT');
      expect((await running[0].exit).code).toBe(130);
    },
    SLOW_TEST_TIMEOUT,
  );

  it('a worker refuses a thread count that every run would refuse, before it takes one', () => {
    for (const threads of ['500', '0']) {
      const r = runCli(['worker', '--queue', 'redis://127.0.0.1:1', '--threads', threads]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({
        code: 2,
        stderr: `lockstep: --threads ${threads}: must be an integer from 1 to 128\n`,
      });
    }
  });

  it(
    'a port that takes the connection and never answers is refused within seconds, not waited on for ever',
    async () => {
      const silent = createServer(() => {}); // accepts, says nothing
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      onTestFinished(() => new Promise<void>((resolve) => silent.close(() => resolve())));
      silent.on('connection', (socket) => onTestFinished(() => void socket.destroy()));
      const port = (silent.address() as AddressInfo).port;
      for (const command of [['sweep', '--seed', '0', ...SMALL, '--detach'], ['worker']]) {
        const r = await startCli([...command, '--queue', `redis://127.0.0.1:${port}`]).exit;
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toBe(`lockstep: --queue redis://127.0.0.1:${port}/0: no answer within 5 s\n`);
      }
    },
    SLOW_TEST_TIMEOUT,
  );
});

/** What a SIGKILL'd worker leaves: its run's process (it ends at its next line to the dead pipe) and its config directory. */
function killOrphans(pid: number): void {
  const mark = `lockstep-worker-${pid}-`;
  for (const p of processesWith(mark)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // ended meanwhile
    }
  }
  for (const name of readdirSync(tmpdir()).filter((n) => n.startsWith(mark)))
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
}
