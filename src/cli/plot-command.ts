import type { ArgsOf } from '../options/table.js';
import { basename } from 'node:path';
import { curvesChart } from '../experiments/charts.js';
import { checkOutput, renderSvg, writeOutput } from '../experiments/output.js';
import { readCurves } from '../experiments/plot.js';
import { plural } from '../words.js';
import { print } from './flags.js';

export async function plotCommand(args: ArgsOf<'plot'>): Promise<number> {
  checkOutput(args.svg, '--svg', args.force);
  const rows = readCurves(args.log);
  writeOutput(args.svg, await renderSvg(curvesChart(rows, `lockstep: ${basename(args.log)}`)));
  const curves = (['train', 'val', 'test'] as const).filter((s) =>
    rows.some((r) => r[`${s}Loss`] !== null || r[`${s}Accuracy`] !== null),
  );
  if (args.json) print(JSON.stringify({ event: 'plot', svg: args.svg, epochs: rows.length, curves }));
  else print(`wrote ${args.svg}: loss and accuracy over ${plural(rows.length, 'epoch')} (${curves.join(', ')})`);
  return 0;
}
