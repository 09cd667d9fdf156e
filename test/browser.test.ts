import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forwardOne } from '../src/inference/predict.js';
import { modelLayout } from '../src/model/layout.js';
import { encodeSafetensors } from '../src/model-io/safetensors.js';
import { blobsCsv, runCli, SLOW_TEST_TIMEOUT, startCli, tempDir, type StartedCli } from './helpers.js';

/** Debian's chromium (.ci/run installs it). */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);

/** Where the screenshots go: LOCKSTEP_SCREENSHOTS=docs writes docs/serve.png and docs/dashboard.png; otherwise a temporary directory. */
function screenshotPath(name: string): string {
  return join(process.env.LOCKSTEP_SCREENSHOTS ?? tempDir(), name);
}

/** The URL a `serve` or `train --dashboard` prints, once it has. */
async function printedUrl(cli: StartedCli, pattern: RegExp): Promise<string> {
  const outcome = { stdout: '' };
  cli.child.stdout!.on('data', (chunk: string) => (outcome.stdout += chunk));
  await cli.printed(pattern);
  return /(http:\/\/[^\s/]+\/)/.exec(outcome.stdout + '')?.[1] ?? '';
}

describe('lockstep serve: the JSON API', () => {
  let url: string;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const ckpt = join(dir, 'run.ckpt');
    expect(
      runCli(['train', '--layers', '784,16,10', '--epochs', '1', '--max-steps', '20', '--checkpoint', ckpt], {
        timeout: SLOW_TEST_TIMEOUT,
      }).code,
    ).toBe(0);
    const served = startCli(['serve', ckpt, '--port', '0', '--json']);
    url = await printedUrl(served, /"event":"serve"/);
  }, SLOW_TEST_TIMEOUT);

  it(
    'answers a prediction as lockstep predict does, and refuses bad requests with 4xx and a message',
    async () => {
      const post = (body: string) =>
        fetch(`${url}api/predict`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const pixels = new Uint8Array(784).map((_, i) => (i % 28 > 10 && i % 28 < 16 ? 255 : 0));
      const ok = await post(JSON.stringify({ input: Array.from(pixels) }));
      expect(ok.status).toBe(200);
      const answer = (await ok.json()) as { predicted: number; probabilities: number[] };
      const pgm = join(dir, 'bar.pgm');
      writeFileSync(pgm, Buffer.concat([Buffer.from('P5\n28 28\n255\n'), pixels]));
      const predicted = JSON.parse(runCli(['predict', join(dir, 'run.ckpt'), '--image', pgm, '--json']).stdout);
      expect(answer.predicted).toBe(predicted.predicted);
      expect(answer.probabilities).toEqual(predicted.probabilities);

      const refused = async (res: Response | Promise<Response>, status: number, message: RegExp) => {
        const r = await res;
        expect(r.status).toBe(status);
        expect(((await r.json()) as { error: string }).error).toMatch(message);
      };
      await refused(post('{"input": [1, 2'), 400, /^request body is not JSON/);
      await refused(post('[1, 2]'), 400, /^expected \{"input": \[784 integers from 0 to 255\]\}$/);
      await refused(post('{"input": [1, 2]}'), 400, /^input has 2 values; the model takes 784$/);
      await refused(
        post(JSON.stringify({ input: [...new Array(783).fill(0), 256] })),
        400,
        /^input\[783\] is 256; each value/,
      );
      await refused(
        post(JSON.stringify({ input: new Array(784).fill('../../etc/passwd') })),
        400,
        /^input\[0\] is "\.\.\/\.\.\/etc\/passwd"/,
      );
      await refused(
        post(`{"input": [1e400${',0'.repeat(783)}]}`),
        400,
        /^input\[0\] is over 1\.8e308; each value is an integer/,
      );
      // An empty image and pixels scaled already are answered, with the notices predict prints.
      const noticesOf = async (input: number[]) =>
        ((await (await post(JSON.stringify({ input }))).json()) as { notices?: string[] }).notices;
      expect(answer).not.toHaveProperty('notices');
      expect(await noticesOf(new Array(784).fill(0))).toEqual([
        'the image: every pixel is 0: the image is empty, so the prediction means nothing',
      ]);
      expect(await noticesOf(Array.from(pixels, (p) => (p === 255 ? 1 : 0)))).toEqual([
        expect.stringMatching(/^the input: every value is from 0 to 1, but the model takes pixels from 0 to 255/),
      ]);
      await refused(post(' '.repeat(100_000)), 413, /limit is 16384/);
      await refused(fetch(`${url}..%2f..%2fetc%2fpasswd`), 404, /not found/);
      await refused(fetch(`${url}api/predict`), 405, /use POST/);
      const info = await (await fetch(`${url}api/model`)).json();
      expect(info).toMatchObject({
        model: 'run.ckpt',
        layers: [784, 16, 10],
        input: { kind: 'image', width: 28, height: 28 },
      });
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "serves a CSV table's model as a form of its named features: raw values, the model's scaling, as predict --csv",
    async () => {
      const data = join(dir, 'table.csv');
      const rows = join(dir, 'rows.csv');
      writeFileSync(data, blobsCsv(120, 31));
      writeFileSync(rows, blobsCsv(5, 32));
      expect(
        runCli(
          ['train', '--data', data, '--hidden', '6', '--epochs', '2', '--checkpoint', 'table.ckpt', '--threads', '1'],
          { cwd: dir },
        ).code,
      ).toBe(0);
      const served = startCli(['serve', join(dir, 'table.ckpt'), '--port', '0', '--json']);
      const tableUrl = await printedUrl(served, /"event":"serve"/);
      const info = await (await fetch(`${tableUrl}api/model`)).json();
      expect(info).toMatchObject({
        input: { kind: 'features', count: 4, names: ['f0', 'f1', 'f2', 'f3'] },
        classNames: ['alpha', 'beta', 'gamma'],
      });
      // The form starts at the training rows' means, not at 0 (here features from about 0 to 33).
      const trained = readFileSync(data, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((line) =>
          line
            .split(',')
            .slice(0, 4)
            .map((v) => Math.fround(Number(v))),
        );
      const means = [0, 1, 2, 3].map((k) => trained.reduce((sum, row) => sum + row[k], 0) / trained.length);
      const start = (info as { input: { means: number[] } }).input.means;
      expect(start).toHaveLength(4);
      start.forEach((m, k) => expect(m).toBeCloseTo(means[k], 9));
      expect(means[3]).toBeGreaterThan(25);
      const expected = runCli(['predict', join(dir, 'table.ckpt'), '--csv', rows, '--json'])
        .stdout.trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      const features = readFileSync(rows, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',').slice(0, 4).map(Number));
      for (const [i, input] of features.entries()) {
        const res = await fetch(`${tableUrl}api/predict`, { method: 'POST', body: JSON.stringify({ input }) });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { probabilities: number[] }).probabilities).toEqual(expected[i].probabilities);
      }
      const bad = await fetch(`${tableUrl}api/predict`, {
        method: 'POST',
        body: JSON.stringify({ input: [1, 2, 'x', 4] }),
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toBe('input[2] is "x"; each value is a finite number');
      const huge = await fetch(`${tableUrl}api/predict`, { method: 'POST', body: '{"input": [1, 2, 1e39, 4]}' });
      expect(((await huge.json()) as { error: string }).error).toBe(
        "input[2] is 1e+39, beyond float32's range (±3.4e38)",
      );
      // Values that overflow the network's float32 arithmetic have no answer: 400, not NaN probabilities.
      const overflow = await fetch(`${tableUrl}api/predict`, {
        method: 'POST',
        body: JSON.stringify({ input: [3e38, -3e38, 3e38, -3e38] }),
      });
      expect(overflow.status).toBe(400);
      expect(((await overflow.json()) as { error: string }).error).toMatch(
        /^the input: its values overflow the network's float32 arithmetic/,
      );
      // A feature far outside the training rows is answered, with a notice naming it.
      const far = await fetch(`${tableUrl}api/predict`, {
        method: 'POST',
        body: JSON.stringify({ input: [0, 10, 20, 900] }),
      });
      expect(((await far.json()) as { notices: string[] }).notices).toEqual([
        expect.stringMatching(
          /^the input: input\[3\] \("f3"\) is 900, \d+(\.\d+)? standard deviations from the training rows' mean 3\d\.\d+, so the model's answer means little$/,
        ),
      ]);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'refuses a bad --port, and a port in use, in one line',
    async () => {
      const bad = runCli(['serve', join(dir, 'run.ckpt'), '--port', '70000']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toBe('lockstep: --port 70000: must be an integer from 0 to 65535 (0: any free port)\n');
      const port = new URL(url).port;
      const busy = runCli(['serve', join(dir, 'run.ckpt'), '--port', port]);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toBe(`lockstep: --port ${port}: cannot listen on 127.0.0.1 (in use)\n`);
      const elsewhere = runCli(['serve', join(dir, 'run.ckpt'), '--port', '0', '--host', '10.255.255.1']);
      expect(elsewhere.stderr).toBe(
        'lockstep: --host 10.255.255.1: cannot listen there (10.255.255.1 is not an address of this machine)\n',
      );
      expect(elsewhere.code).toBe(2);
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "answers a request whose body never ends with 408 soon after its 10 s (not at Node's next 30 s check)",
    async () => {
      const { hostname, port } = new URL(url);
      const started = Date.now();
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () =>
          socket.write('POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{'),
        );
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(reply).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeLessThan(15_000);
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe('train --dashboard: the event stream', () => {
  it(
    'sends the config first, then each epoch and progress as they come, then the end, and closes with the run',
    async () => {
      const run = startCli([
        'train',
        '--epochs',
        '2',
        '--train-limit',
        '1000',
        '--test-limit',
        '200',
        '--threads',
        '1',
        '--kernels',
        'js',
        '--json',
        '--dashboard',
        '0',
      ]);
      const url = await printedUrl(run, /"event":"dashboard"/);
      const res = await fetch(`${url}events`);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      let text = '';
      for await (const chunk of res.body!) text += Buffer.from(chunk).toString('utf8');
      const events = text
        .trim()
        .split('\n\n')
        .map((block) => {
          const [, name, data] = /^event: (\w+)\ndata: (.*)$/s.exec(block)!;
          return { name, data: JSON.parse(data) };
        });
      expect(events[0].name).toBe('snapshot');
      // The data fixes the layers: a page that connects before train() has read it hears them in a 'config' event.
      const settled = events.findLastIndex((e, i) => i === 0 || e.name === 'config');
      expect(settled).toBeLessThan(events.findIndex((e) => e.name === 'epoch'));
      const config = settled === 0 ? events[0].data.config : events[settled].data;
      expect(config).toMatchObject({ layers: [784, 128, 64, 10], epochs: 2, trainLimit: 1000 });
      expect(events.filter((e) => e.name === 'epoch').map((e) => e.data.epoch)).toEqual([1, 2]);
      const done = events[events.length - 1];
      expect(done.name).toBe('done');
      const outcome = await run.exit;
      expect(outcome.code, outcome.stderr).toBe(0);
      expect(done.data.paramsSha256).toBe(JSON.parse(outcome.stdout.trim().split('\n').pop()!).paramsSha256);
      const progress = events.filter((e) => e.name === 'progress').map((e) => e.data);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress[progress.length - 1]).toMatchObject({
        epoch: 2,
        epochs: 2,
        steps: 32,
        stepsPerEpoch: 16,
        etaSeconds: 0,
      });
    },
    SLOW_TEST_TIMEOUT,
  );
});

describe.skipIf(!haveChromium && !process.env.CI)('in headless Chromium', () => {
  let browser: Browser;
  let dir: string;
  let ckpt: string;
  beforeAll(async () => {
    expect(haveChromium, `no ${CHROMIUM}: apt-get install chromium (.ci/run does)`).toBe(true);
    dir = tempDir();
    ckpt = join(dir, 'digits.ckpt');
    const trained = runCli(['train', '--epochs', '1', '--threads', '2', '--checkpoint', ckpt], {
      timeout: SLOW_TEST_TIMEOUT,
    });
    expect(trained.code, trained.stderr).toBe(0);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, SLOW_TEST_TIMEOUT);
  afterAll(async () => {
    await browser?.close();
  });

  /** A "7" drawn with the mouse: across the top, then down to the left. */
  async function drawSeven(page: Page): Promise<void> {
    const box = (await page.locator('#draw').boundingBox())!;
    const at = (x: number, y: number): [number, number] => [
      box.x + (x / 28) * box.width,
      box.y + (y / 28) * box.height,
    ];
    await page.mouse.move(...at(7, 7));
    await page.mouse.down();
    for (const [x, y] of [
      [12, 7],
      [17, 7],
      [21, 7],
      [19, 12],
      [17, 16],
      [15, 20],
      [13, 24],
    ])
      await page.mouse.move(...at(x, y), { steps: 4 });
    await page.mouse.up();
  }

  it(
    'serve: a digit drawn with the mouse gets the answer lockstep predict gives for the same pixels',
    async () => {
      const served = startCli(['serve', ckpt, '--port', '0']);
      const url = await printedUrl(served, /^serving /);
      const page = await browser.newPage({ viewport: { width: 760, height: 460 } });
      await page.goto(url);
      await page.locator('#p-9').waitFor();
      await drawSeven(page);
      await page.waitForFunction(() => {
        const s = (window as unknown as { lockstep: { requests: number; busy: boolean } }).lockstep;
        return s.requests > 0 && !s.busy;
      });
      // Several predictions went out while the stroke was drawn: the probabilities updated as it was drawn.
      const state = await page.evaluate(
        () => (window as unknown as { lockstep: { lastInput: number[]; requests: number } }).lockstep,
      );
      expect(state.requests).toBeGreaterThan(1);
      expect(state.lastInput.filter((v) => v > 0).length).toBeGreaterThan(40);
      const shown = await Promise.all(Array.from({ length: 10 }, (_, c) => page.locator(`#p-${c}`).textContent()));
      const answer = await page.locator('#answer').textContent();

      const pgm = join(dir, 'drawn.pgm');
      writeFileSync(pgm, Buffer.concat([Buffer.from('P5\n28 28\n255\n'), Uint8Array.from(state.lastInput)]));
      const predicted = runCli(['predict', ckpt, '--image', pgm, '--json']);
      expect(predicted.code, predicted.stderr).toBe(0);
      const { predicted: cls, probabilities } = JSON.parse(predicted.stdout) as {
        predicted: number;
        probabilities: number[];
      };
      expect(answer).toBe(`looks like ${cls}`);
      expect(shown).toEqual(probabilities.map((p) => p.toFixed(4)));

      const shot = screenshotPath('serve.png');
      await page.screenshot({ path: shot });
      expect(PNG.sync.read(readFileSync(shot)).width).toBe(760);
      await page.close();
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'serve: a model whose input is not a square gets a form of its features, answered as lockstep computes',
    async () => {
      const layout = modelLayout([5, 4, 3]);
      const params = Float32Array.from({ length: layout.paramCount }, (_, i) => Math.sin(i + 1));
      const model = join(dir, 'features.safetensors');
      writeFileSync(model, encodeSafetensors(layout, params, {}));
      const served = startCli(['serve', model, '--port', '0']);
      const url = await printedUrl(served, /^serving .*fill in 5 features/);
      const page = await browser.newPage();
      await page.goto(url);
      // No stored means (a model without --scale standard): the fields start empty, and nothing is asked until each has a value.
      await page.locator('input[name=f4]').waitFor();
      expect(await Promise.all([0, 1, 2, 3, 4].map((i) => page.locator(`input[name=f${i}]`).inputValue()))).toEqual([
        '',
        '',
        '',
        '',
        '',
      ]);
      await page.locator('input[name=f0]').fill('3');
      expect(
        await page.evaluate(() => (window as unknown as { lockstep: { requests: number } }).lockstep.requests),
      ).toBe(0);
      const values = [0, 40, 255, 7, 128];
      for (const [i, v] of values.entries()) await page.locator(`input[name=f${i}]`).fill(String(v));
      await page.locator('#features button').click();
      await page.waitForFunction((n) => {
        const s = (window as unknown as { lockstep: { lastInput: number[] | null; busy: boolean } }).lockstep;
        return !s.busy && s.lastInput?.join(',') === n;
      }, values.join(','));
      const expected = forwardOne(layout, params, Uint8Array.from(values));
      const shown = await Promise.all([0, 1, 2].map((c) => page.locator(`#p-${c}`).textContent()));
      expect(shown).toEqual(Array.from(expected, (p) => p.toFixed(4)));
      await page.close();
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    "serve: a table's model gets a form that starts at the training means, and answers them as predict --csv does",
    async () => {
      const data = join(dir, 'table.csv');
      writeFileSync(data, blobsCsv(120, 31));
      const table = join(dir, 'table.ckpt');
      expect(
        runCli(['train', '--data', data, '--hidden', '6', '--epochs', '2', '--checkpoint', table, '--threads', '1'])
          .code,
      ).toBe(0);
      const served = startCli(['serve', table, '--port', '0']);
      const url = await printedUrl(served, /^serving /);
      const info = (await (await fetch(`${url}api/model`)).json()) as { input: { means: number[] } };
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(
        () => (window as unknown as { lockstep: { requests: number; busy: boolean } }).lockstep.requests > 0,
      );
      const shown = await Promise.all([0, 1, 2, 3].map((i) => page.locator(`input[name=f${i}]`).inputValue()));
      expect(shown.map(Number)).toEqual(info.input.means);
      const sent = await page.evaluate(
        () => (window as unknown as { lockstep: { lastInput: number[] } }).lockstep.lastInput,
      );
      expect(sent).toEqual(info.input.means);
      const rows = join(dir, 'means.csv');
      writeFileSync(rows, `f0,f1,f2,f3\n${shown.join(',')}\n`);
      const expected = JSON.parse(runCli(['predict', table, '--csv', rows, '--json']).stdout.trim());
      expect(await page.locator('#p-0').textContent()).toBe(expected.probabilities[0].toFixed(4));
      // The API answers with the class name too, as predict --csv does.
      const answer = await fetch(`${url}api/predict`, {
        method: 'POST',
        body: JSON.stringify({ input: info.input.means }),
      });
      expect(await answer.json()).toMatchObject({ predicted: expected.predicted, className: expected.className });
      await page.close();
    },
    SLOW_TEST_TIMEOUT,
  );

  it(
    'train --dashboard: epochs appear while it runs; closing the page neither stops the run nor changes a bit',
    async () => {
      // The scalar kernels on one thread keep the run slow enough (seconds an epoch) to watch; the bits are the same.
      const args = ['train', '--epochs', '4', '--train-limit', '3000', '--test-limit', '500', '--json'];
      const run = startCli([...args, '--threads', '1', '--kernels', 'js', '--dashboard', '0']);
      const url = await printedUrl(run, /"event":"dashboard"/);
      const page = await browser.newPage({ viewport: { width: 1180, height: 560 } });
      await page.goto(url);
      await page.locator('#epoch-3').waitFor({ timeout: SLOW_TEST_TIMEOUT });
      expect(await page.locator('#epoch-1 td').nth(5).textContent()).toMatch(/^0\.\d{4}$/);
      const stepsColumn = await Promise.all(
        [1, 2, 3].map(async (e) => Number(await page.locator(`#epoch-${e} td`).nth(1).textContent())),
      );
      await page.waitForFunction(
        () => (window as unknown as { lockstep: { progress: unknown } }).lockstep.progress !== null,
      );
      expect(await page.locator('#status').textContent()).toMatch(/steps\/s · ETA|evaluating · ETA|done: /);
      expect(await page.locator('#config').textContent()).toContain('784,128,64,10');
      expect(await page.locator('#charts svg').count()).toBe(1);
      const shot = screenshotPath('dashboard.png');
      await page.screenshot({ path: shot });
      expect(PNG.sync.read(readFileSync(shot)).width).toBe(1180);
      await page.close();

      const outcome = await run.exit;
      expect(outcome.code, outcome.stderr).toBe(0);
      const lines = outcome.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(lines.filter((l) => l.event === 'epoch').map((l) => l.epoch)).toEqual([1, 2, 3, 4]);
      // The table's steps column counts as --log's does: the steps taken in all by each epoch's end.
      expect(stepsColumn).toEqual(
        lines
          .filter((l) => l.event === 'epoch')
          .slice(0, 3)
          .map((l) => l.steps),
      );
      expect(stepsColumn[2]).toBe(3 * stepsColumn[0]);
      const plain = runCli([...args, '--threads', '2'], { timeout: SLOW_TEST_TIMEOUT });
      expect(plain.code, plain.stderr).toBe(0);
      expect(lines.pop().paramsSha256).toBe(JSON.parse(plain.stdout.trim().split('\n').pop()!).paramsSha256);
    },
    SLOW_TEST_TIMEOUT * 2,
  );

  it(
    'train --dashboard: a page opened mid-run charts every epoch so far, not only those that came after it',
    async () => {
      const run = startCli([
        'train',
        '--epochs',
        '8',
        '--train-limit',
        '2000',
        '--test-limit',
        '200',
        '--threads',
        '1',
        '--kernels',
        'js',
        '--json',
        '--dashboard',
        '0',
      ]);
      const url = await printedUrl(run, /"event":"dashboard"/);
      // Opened once four epochs are printed (three or more have reached the page's snapshot, which brings them all at once).
      await run.printed(/"event":"epoch","epoch":4\b/);
      const page = await browser.newPage({ viewport: { width: 1180, height: 560 } });
      await page.goto(url);
      await page.locator('#status.done').waitFor({ timeout: SLOW_TEST_TIMEOUT });
      expect(await page.locator('#epochs tr[id^=epoch-]').count()).toBe(8);
      // One point per finite value: train and test loss, train and test accuracy, for each epoch.
      const values = await page.evaluate(
        () =>
          (window as unknown as { lockstep: { epochs: Record<string, unknown>[] } }).lockstep.epochs
            .flatMap((r) => [r.trainLoss, r.testLoss, r.trainAccuracy, r.testAccuracy])
            .filter((v) => typeof v === 'number' && Number.isFinite(v)).length,
      );
      expect(values).toBeGreaterThanOrEqual(8 * 2);
      // The charts' points, not the legend's symbols; vega draws asynchronously, so the last epoch gets a moment before they are counted.
      const points = '#charts g.mark-symbol.role-mark path';
      await page
        .waitForFunction(
          ([selector, n]) => document.querySelectorAll(selector).length === n,
          [points, values] as const,
          { timeout: 10_000 },
        )
        .catch(() => {});
      expect(await page.locator(points).count()).toBe(values);
      await page.close();
      expect((await run.exit).code).toBe(0);
    },
    SLOW_TEST_TIMEOUT,
  );

  it('train --dashboard with a bad port is refused before training, in one line', () => {
    const r = runCli(['train', '--dashboard', '70000', '--epochs', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('lockstep: --dashboard 70000: must be an integer from 0 to 65535 (0: any free port)\n');
  });
});
