import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename } from 'node:path';
import { argmaxRow } from '../kernels/softmax.js';
import { paramsSha256 } from '../model/hash.js';
import { forwardOne } from '../inference/predict.js';
import { checkOptions, resolveModel, type ModelSource, type ResolvedModel } from '../model-io/model-source.js';
import { allow, DEFAULT_HOST, HttpError, listen, readJson, sendJson, sendPage, type Listening } from './http.js';
import { SERVE_PAGE } from './serve-page.js';

export interface ServeOptions {
  /** 0: any free port (the URL says which). */
  port?: number;
  host?: string;
}

export const DEFAULT_SERVE_PORT = 8080;

/** What the page needs to draw its input: an image (a square input, as MNIST's 28×28) or a form of features. */
export interface ModelInfo {
  model: string;
  layers: number[];
  input: { kind: 'image'; width: number; height: number } | { kind: 'features'; count: number };
  /** One name per class; the class numbers until a model carries names of its own. */
  classNames: string[];
  paramsSha256: string;
}

export function modelInfo(model: ResolvedModel): ModelInfo {
  const { sizes } = model.layout;
  const side = Math.round(Math.sqrt(sizes[0]));
  return {
    // The file's name, not its path: the page may be open to other machines (--host).
    model: basename(model.name),
    layers: sizes,
    input: side * side === sizes[0] ? { kind: 'image', width: side, height: side } : { kind: 'features', count: sizes[0] },
    classNames: Array.from({ length: sizes[sizes.length - 1] }, (_, c) => String(c)),
    paramsSha256: paramsSha256(model.params),
  };
}

/**
 * `lockstep serve`: a page to draw a digit (image models) or fill in the features, with the class
 * probabilities as they change, and POST /api/predict {"input": [values 0..255, one per input]} →
 * {"predicted", "probabilities"}. The model is read once; no part of a request names a file.
 */
export async function serveModel(source: ModelSource, options: ServeOptions = {}): Promise<Listening & { info: ModelInfo }> {
  checkOptions(options, ['port', 'host'], 'serveModel');
  const model = resolveModel(source, 'serveModel');
  const info = modelInfo(model);
  const inputs = model.layout.sizes[0];
  // A body of `inputs` numbers 0..255 with commas and some spaces, and room for the JSON around it.
  const bodyLimit = Math.max(16 * 1024, inputs * 8);
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/') {
      if (allow(req, res, 'GET')) sendPage(res, SERVE_PAGE);
    } else if (path === '/api/model') {
      if (allow(req, res, 'GET')) sendJson(res, 200, info);
    } else if (path === '/api/predict') {
      if (!allow(req, res, 'POST')) return;
      const pixels = inputOf(await readJson(req, bodyLimit), inputs);
      const probabilities = forwardOne(model.layout, model.params, pixels);
      sendJson(res, 200, { predicted: argmaxRow(probabilities, 0, probabilities.length), probabilities: Array.from(probabilities) });
    } else {
      sendJson(res, 404, { error: `${path}: not found (the page is /, the API /api/predict and /api/model)` });
    }
  };
  const listening = await listen(handler, options.port ?? DEFAULT_SERVE_PORT, options.host ?? DEFAULT_HOST);
  return { ...listening, info };
}

/** The request's input as the model's bytes, or a 400 that says what is wrong with it. */
function inputOf(body: unknown, inputs: number): Uint8Array {
  const input = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { input?: unknown }).input : undefined;
  if (!Array.isArray(input)) throw new HttpError(400, `expected {"input": [${inputs} integers from 0 to 255]}`);
  if (input.length !== inputs) throw new HttpError(400, `input has ${input.length} values; the model takes ${inputs}`);
  const bytes = new Uint8Array(inputs);
  for (let i = 0; i < inputs; i++) {
    const v = input[i];
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new HttpError(400, `input[${i}] is ${JSON.stringify(v)}; each value is an integer from 0 to 255`);
    bytes[i] = v;
  }
  return bytes;
}
