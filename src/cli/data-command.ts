import type { ArgsOf } from '../options/table.js';
import { convertFashionMnist, FASHION_MNIST_PACKAGE } from '../data/fashion-mnist.js';
import { UserError } from '../errors.js';
import { print } from './flags.js';

/** `lockstep data fashion-mnist DIR`: a dataset shipped in another shape, as the four IDX files in DIR. */
export async function dataCommand(args: ArgsOf<'data'>): Promise<number> {
  if (args.dataset !== FASHION_MNIST_PACKAGE) {
    const given = args.dataset === undefined ? '`data` needs a dataset' : `\`data ${args.dataset}\`: unknown dataset`;
    throw new UserError(`${given}; it knows ${FASHION_MNIST_PACKAGE} (lockstep data ${FASHION_MNIST_PACKAGE} DIR)`);
  }
  if (args.dir === undefined || args.dir === '')
    throw new UserError(
      `\`data ${FASHION_MNIST_PACKAGE}\` needs the directory to write the IDX files in (lockstep data ${FASHION_MNIST_PACKAGE} DIR)`,
    );
  const s = convertFashionMnist({ from: args.from, to: args.dir, force: args.force });
  const dropped = s.dropped.reduce((a, b) => a + b, 0);
  if (args.json) {
    print(JSON.stringify({ event: 'data', dataset: FASHION_MNIST_PACKAGE, ...s, dropped, droppedPerClass: s.dropped }));
    return 0;
  }
  const where = s.dropped.flatMap((n, label) => (n > 0 ? [`class ${label}: ${n}`] : [])).join(', ');
  print(
    `read ${s.rows} rows from ${s.from}; dropped ${dropped} empty row${dropped === 1 ? '' : 's'}${where ? ` (${where})` : ''}`,
  );
  print(`wrote ${s.train} training and ${s.test} test images (28×28, 10 classes) to ${s.to}: ${s.files.join(', ')}`);
  print(
    "split: each class's last seventh is test, the rest train; each split shuffled by lockstep's generator (seed 0)",
  );
  print(`train on it: lockstep train --data ${s.to}`);
  return 0;
}
