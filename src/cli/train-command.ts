import { DivergenceError, EXIT_INTERRUPTED } from '../errors.js';
import type { ArgsOf } from '../options/table.js';
import { formatDone, formatEpoch } from './format.js';
import { historyChart, ProgressLine, progressEnabled } from './progress.js';
import { readRunConfig, withRunConfig } from '../train/run-config.js';
import type { TrainConfig } from '../train/config.js';
import { evaluationDue } from '../train/epoch-loop.js';
import { train, type EpochReport, type SplitRows } from '../train/train.js';
import { epochSteps } from '../optim/schedule.js';
import { startDashboard, type Dashboard } from '../web/dashboard.js';
import { plural } from '../words.js';
import { notice, print, sayKernelFallback, trainOptionsOf } from './flags.js';
import { EXIT_WITH_PARENT, exitWhenStdinEnds } from '../experiments/parent-pipe.js';
import { onStopSignals } from './signals.js';

export async function trainCommand(args: ArgsOf<'train'>): Promise<number> {
  let options = trainOptionsOf(args, 'train');
  if (args.config !== undefined) options = withRunConfig(readRunConfig(args.config), options);
  const stop = onStopSignals();
  const stopWatchingParent = exitWithParent();
  const progress = progressEnabled(process.stdout, args.json) && !args.quiet ? new ProgressLine(process.stdout) : null;
  let shownEpoch: ((r: EpochReport) => boolean) | undefined;
  const signalHook = testSignalHook();
  let dashboard: Dashboard | undefined;
  let epochs = 0;
  let outcome: Record<string, unknown> = { error: 'the run failed' };
  try {
    const result = await train(options, {
      signal: stop.signal,
      onNotice: notice,
      onCalibrated: (c, batchSize) => {
        const rates = [...c.stepsPerSec].map(([t, rate]) => `${t}: ${rate.toFixed(0)}`).join(', ');
        process.stderr.write(
          `lockstep: --threads auto: ${plural(c.threads, 'thread')} (steps/s ${rates}; median of ${c.rounds} rounds of ${c.steps} steps at batch ${batchSize})\n`,
        );
      },
      onStart: async (config, rows) => {
        sayKernelFallback(options);
        shownEpoch = epochLineShown(config, rows, args);
        if (args.dashboard === undefined) return;
        dashboard = await startDashboard(args.dashboard, config);
        print(args.json ? JSON.stringify({ event: 'dashboard', url: dashboard.url }) : `dashboard: ${dashboard.url}`);
        dashboard.hooks.onStart(config, rows);
      },
      onEpoch: (r) => {
        epochs++;
        progress?.clear();
        if (shownEpoch?.(r) !== false) print(args.json ? JSON.stringify(r) : formatEpoch(r));
        dashboard?.hooks.onEpoch(r);
      },
      onStep: (info, params) => {
        progress?.step(info);
        signalHook?.(info);
        dashboard?.hooks.onStep(info, params);
      },
    });
    const { params: _p, layout: _l, history: _h, state: _s, config: _c, ...done } = result;
    outcome = done;
    progress?.clear();
    if (progress) print(historyChart(result.history));
    // The model's sizes too: a saved line says what it measured.
    print(args.json ? JSON.stringify({ ...done, layers: result.layout.layers }) : formatDone(result));
    const { stoppedEarly, best } = result.state;
    if (stoppedEarly !== undefined && epochs > 0) {
      process.stderr.write(
        `lockstep: early stop after epoch ${stoppedEarly}: no validation loss better than ${best?.valLoss.toFixed(4)} (epoch ${best?.epoch}) for ${result.config.earlyStop ?? '?'} epochs` +
          `${options.saveBest ? `; its weights are in ${options.saveBest}` : ''}\n`,
      );
    }
    if (!result.interrupted) return 0;
    const checkpoint = options.checkpoint ?? options.resume;
    process.stderr.write(
      `lockstep: interrupted by ${stop.reason()} at epoch ${result.state.epoch}, step ${result.state.stepInEpoch} (${result.steps} steps in all)` +
        `${checkpoint === undefined ? '' : `; checkpoint written to ${checkpoint}`}\n`,
    );
    return EXIT_INTERRUPTED;
  } catch (err) {
    outcome = { error: (err as Error)?.message ?? String(err) };
    // A program reading --json learns of a diverged run on stdout too (the message still goes to stderr).
    if (args.json && err instanceof DivergenceError)
      print(JSON.stringify({ event: 'diverged', ...err.at, message: err.message }));
    throw err;
  } finally {
    stop.dispose();
    stopWatchingParent();
    await dashboard?.finish(outcome);
  }
}

/**
 * Which epochs get a line on stdout: none with --quiet; in text, only those --eval-every evaluates (200
 * lines of loss alone would bury them); in JSON, every epoch (a program reads them, as --log writes them).
 */
function epochLineShown(config: TrainConfig, rows: SplitRows, args: ArgsOf<'train'>): (r: EpochReport) => boolean {
  if (args.quiet) return () => false;
  if (args.json || config.evalEvery === 1) return () => true;
  const stepsPerEpoch = epochSteps(rows.train, config.batchSize);
  return (r) => evaluationDue(r.epoch, config.evalEvery, config.epochs, r.epochSteps === stepsPerEpoch);
}

/** A run of `sweep` or `worker` (LOCKSTEP_EXIT_WITH_PARENT=1) exits when that process dies: it has no one to report to. */
function exitWithParent(): () => void {
  return process.env[EXIT_WITH_PARENT] === '1' ? exitWhenStdinEnds(EXIT_INTERRUPTED) : () => {};
}

/** Test-only: LOCKSTEP_TEST_SIGNAL_AT_STEP=N sends this process a real SIGINT after step N. */
function testSignalHook(): ((info: { steps: number }) => void) | undefined {
  const at = Number(process.env.LOCKSTEP_TEST_SIGNAL_AT_STEP);
  if (!Number.isSafeInteger(at) || at < 1) return undefined;
  return ({ steps }) => {
    if (steps === at) process.kill(process.pid, 'SIGINT');
  };
}
