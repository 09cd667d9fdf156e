import type { TopLevelSpec } from 'vega-lite';
import type { BenchRow } from './bench.js';
import { formatMachine, type MachineFacts } from './machine.js';

// The specs are plain JSON for vega-lite, checked by compile() when rendered (its TypeScript types are not exported).
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * bench --svg: speedup against threads, one line per batch size, with each point's min–max over the
 * rounds, the ideal (speedup = threads) and, with --profile, the machine's ceiling.
 */
export function scalingChart(rows: BenchRow[], machine: MachineFacts): TopLevelSpec {
  const values = rows.map((r) => ({ ...r, batch: `batch ${r.batchSize}` }));
  const ceilings = rows
    .filter((r) => r.ceilingSpeedup !== undefined)
    .map((r) => ({ threads: r.threads, ceiling: r.ceilingSpeedup, batch: `batch ${r.batchSize}` }));
  const threads = [...new Set(rows.map((r) => r.threads))].sort((a, b) => a - b);
  const x = {
    field: 'threads',
    type: 'quantitative',
    title: 'threads',
    scale: { domain: [0, Math.max(...threads) + 0.5] },
    axis: { values: threads, format: 'd' },
  };
  const color = { field: 'batch', type: 'nominal', title: null, sort: null };
  return {
    $schema: SCHEMA,
    title: {
      text: 'lockstep bench: speedup over 1 thread',
      subtitle: [
        formatMachine(machine),
        `dashed: ideal (speedup = threads)${ceilings.length > 0 ? '; triangles: the ceiling (independent 1-thread runs at once)' : ''}`,
      ],
    },
    width: 420,
    height: 300,
    layer: [
      {
        data: {
          values: [
            { threads: 0, ideal: 0 },
            { threads: Math.max(...threads), ideal: Math.max(...threads) },
          ],
        },
        mark: { type: 'line', strokeDash: [4, 4], color: 'gray' },
        encoding: {
          x,
          y: { field: 'ideal', type: 'quantitative', title: 'speedup (median; bars: min–max over the rounds)' },
        },
      },
      {
        data: { values },
        mark: { type: 'rule' },
        encoding: { x, y: { field: 'speedupMin', type: 'quantitative' }, y2: { field: 'speedupMax' }, color },
      },
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'speedup', type: 'quantitative' }, color },
      },
      ...(ceilings.length === 0
        ? []
        : [
            {
              data: { values: ceilings },
              mark: { type: 'point', shape: 'triangle-up', filled: true, size: 80 },
              encoding: { x, y: { field: 'ceiling', type: 'quantitative' }, color },
            },
          ]),
    ],
  } as unknown as TopLevelSpec;
}

/** One epoch's curves as plot reads them from a --log file or train --json output. */
export interface CurveRow {
  epoch: number;
  trainLoss: number | null;
  valLoss: number | null;
  testLoss: number | null;
  trainAccuracy: number | null;
  valAccuracy: number | null;
  testAccuracy: number | null;
}

/** plot --svg: loss and accuracy against epochs, one line per split present in the log. */
export function curvesChart(rows: CurveRow[], title: string): TopLevelSpec {
  const long = (kind: 'Loss' | 'Accuracy') =>
    rows.flatMap((r) =>
      (['train', 'val', 'test'] as const).flatMap((split) => {
        const value = r[`${split}${kind}`];
        return value === null || Number.isNaN(value) ? [] : [{ epoch: r.epoch, split, value }];
      }),
    );
  const panel = (kind: 'Loss' | 'Accuracy', title: string) => ({
    data: { values: long(kind) },
    mark: { type: 'line', point: true },
    width: 320,
    height: 240,
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { format: 'd', tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title, scale: { zero: false } },
      color: { field: 'split', type: 'nominal', sort: ['train', 'val', 'test'], title: null },
    },
  });
  return {
    $schema: SCHEMA,
    title,
    hconcat: [panel('Loss', 'mean cross-entropy loss'), panel('Accuracy', 'accuracy')],
  } as unknown as TopLevelSpec;
}
