import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TrainConfig } from '../train/config.js';
import type { EpochReport, StepInfo, TrainHooks } from '../train/train.js';
import { DASHBOARD_PAGE } from './dashboard-page.js';
import { allow, DEFAULT_HOST, listen, sendJson, sendPage, type Listening } from './http.js';

/** How often the page hears the step count, steps/s and ETA. */
const PROGRESS_EVERY_MS = 500;
/** A client this far behind (a stalled tab) is dropped rather than buffered for. */
const MAX_CLIENT_BACKLOG = 1 << 20;

export interface Progress {
  epoch: number;
  epochs: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  steps: number;
  /** Over the last PROGRESS_EVERY_MS. */
  stepsPerSecond: number;
  /** The steps left at this run's average pace so far, evaluation included; null before the first step. */
  etaSeconds: number | null;
  seconds: number;
}

export interface Dashboard extends Listening {
  /** onEpoch and onStep for train(): each only records and returns; the timer and the sockets do the rest. */
  hooks: Required<Pick<TrainHooks, 'onStart' | 'onEpoch' | 'onStep'>>;
  /** The run's end (its result line, or the error that ended it): sent to the page, then the server closes. */
  finish(outcome: Record<string, unknown>): Promise<void>;
}

/** vega and vega-lite's browser builds, served to the page from the installed packages. */
function vendorScript(pkg: 'vega' | 'vega-lite'): string {
  const main = createRequire(import.meta.url).resolve(pkg);
  return readFileSync(join(dirname(main), pkg === 'vega' ? 'vega.min.js' : 'vega-lite.min.js'), 'utf8');
}

/**
 * `train --dashboard PORT`: a live page of the run (loss and accuracy per epoch, steps/s, ETA, the config),
 * fed by server-sent events. The training hooks only store the latest numbers; a timer sends them, so a
 * page opened, slow or closed costs the steps nothing.
 */
export async function startDashboard(
  port: number,
  initialConfig: TrainConfig,
  options: { host?: string } = {},
): Promise<Dashboard> {
  const scripts = {
    '/vendor/vega.min.js': vendorScript('vega'),
    '/vendor/vega-lite.min.js': vendorScript('vega-lite'),
  };
  const clients = new Set<ServerResponse>();
  let config = initialConfig;
  const epochs: EpochReport[] = [];
  const started = performance.now();
  // The steps taken before this process's first (a resumed run's), so the pace counts only its own.
  let firstStep: { steps: number } | null = null;
  let latest: StepInfo | null = null;
  let last: { steps: number; at: number } | null = null;
  let progress: Progress | null = null;
  let outcome: Record<string, unknown> | null = null;

  const send = (event: string, data: unknown) => {
    const message = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of clients) {
      if (res.writableLength > MAX_CLIENT_BACKLOG) {
        clients.delete(res);
        res.destroy();
      } else {
        res.write(message);
      }
    }
  };

  const tick = () => {
    if (!latest) return;
    const now = performance.now();
    const { epoch, epochs: lastEpoch, stepInEpoch, stepsPerEpoch, steps } = latest;
    let total = lastEpoch * stepsPerEpoch;
    if (config.maxSteps !== undefined) total = Math.min(total, config.maxSteps);
    const before = firstStep?.steps ?? steps;
    const previous = last ?? { steps: before, at: started };
    const done = steps - before;
    const pace = (now - started) / 1000 / Math.max(1, done);
    progress = {
      epoch,
      epochs: lastEpoch,
      stepInEpoch,
      stepsPerEpoch,
      steps,
      stepsPerSecond: ((steps - previous.steps) * 1000) / Math.max(1, now - previous.at),
      etaSeconds: Math.max(0, total - steps) * pace,
      seconds: (now - started) / 1000,
    };
    last = { steps, at: now };
    send('progress', progress);
  };
  const timer = setInterval(tick, PROGRESS_EVERY_MS);
  timer.unref();

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!allow(req, res, 'GET')) return;
    if (path === '/') return sendPage(res, DASHBOARD_PAGE);
    if (path === '/vendor/vega.min.js' || path === '/vendor/vega-lite.min.js') {
      const body = scripts[path];
      res.writeHead(200, {
        'content-type': 'text/javascript; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'max-age=3600',
      });
      return void res.end(body);
    }
    if (path === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(`event: snapshot\ndata: ${JSON.stringify({ config, epochs, progress, outcome })}\n\n`);
      if (outcome) return void res.end();
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    sendJson(res, 404, { error: `${path}: not found (the page is /, its events /events)` });
  };
  const listening = await listen(handler, port, options.host ?? DEFAULT_HOST, '--dashboard');
  // A page still open must not keep the process alive once training is over.
  listening.server.unref();

  return {
    ...listening,
    hooks: {
      // The data fixes the layers (and the scaling) only once train() has read it.
      onStart: (settled) => {
        config = settled;
        send('config', config);
      },
      onEpoch: (report) => {
        epochs.push(report);
        send('epoch', report);
      },
      onStep: (info) => {
        latest = info;
        firstStep ??= { steps: info.steps - 1 };
      },
    },
    async finish(result) {
      clearInterval(timer);
      tick();
      outcome = result;
      send('done', result);
      for (const res of clients) res.end();
      clients.clear();
      await listening.close();
    },
  };
}
