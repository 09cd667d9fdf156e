import type { ArgsOf } from '../options/table.js';
import { serveModel } from '../web/serve.js';
import { print } from './flags.js';

/** Serves the model until SIGINT or SIGTERM, then closes the server and exits 0. */
export async function serveCommand(args: ArgsOf<'serve'>): Promise<number> {
  const served = await serveModel(args.model, { port: args.port, host: args.host });
  const { layers, input } = served.info;
  const what =
    input.kind === 'image' ? `draw a digit (${input.width}×${input.height})` : `fill in ${input.count} features`;
  print(
    args.json
      ? JSON.stringify({ event: 'serve', url: served.url, model: args.model, layers })
      : `serving ${args.model} (${layers.join('-')}) at ${served.url}: ${what}; POST ${served.url}api/predict {"input": […]}; Ctrl-C stops`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await served.close();
  process.stderr.write(`lockstep: ${signal}: stopped serving\n`);
  return 0;
}
