import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename } from 'node:path';
import { paramsSha256 } from '../model/hash.js';
import { classifyRow, type Answer } from '../inference/predict.js';
import { UserError } from '../errors.js';
import { emptyImageNotice } from '../inference/image.js';
import { inputNotices } from '../inference/input-range.js';
import { outputLabels, outputNames } from '../data/scaling.js';
import { checkOptions, resolveModel, type ModelSource, type ResolvedModel } from '../model-io/model-source.js';
import {
  allow,
  DEFAULT_HOST,
  DEFAULT_SERVE_PORT,
  HttpError,
  listen,
  readJson,
  sendJson,
  sendPage,
  type Listening,
} from './http.js';
import { SERVE_PAGE } from './serve-page.js';

export interface ServeOptions {
  /** 0: any free port (the URL says which). */
  port?: number;
  host?: string;
}

export { DEFAULT_SERVE_PORT };

/** What the page needs to draw its input: an image (a square input, as MNIST's 28×28) or a form of features. */
export interface ModelInfo {
  model: string;
  layers: number[];
  input:
    | { kind: 'image'; width: number; height: number }
    | { kind: 'features'; count: number; names?: string[]; means?: number[] };
  /** One name per class; the class numbers until a model carries names of its own. */
  classNames: string[];
  paramsSha256: string;
}

export function modelInfo(model: ResolvedModel): ModelInfo {
  const sizes = model.layout.layers;
  const side = Math.round(Math.sqrt(sizes[0]));
  const { scaling, featureNames } = model.input;
  // An image is a square of bytes scaled by 255; a table's model (it has feature names) never is.
  const image = side * side === sizes[0] && scaling.kind === '255' && !featureNames;
  return {
    // The file's name, not its path: the page may be open to other machines (--host).
    model: basename(model.name),
    layers: sizes,
    input: image
      ? { kind: 'image', width: side, height: side }
      : {
          kind: 'features',
          count: sizes[0],
          ...(featureNames ? { names: featureNames } : {}),
          // The form starts at the training rows' means (a standard scaling's offsets); without them, empty rather than at 0, which may be far outside the data.
          ...(scaling.kind === 'standard' ? { means: scaling.offset } : {}),
        },
    classNames: outputLabels(model.input, sizes[sizes.length - 1]),
    paramsSha256: paramsSha256(model.params),
  };
}

/**
 * `lockstep serve`: a page to draw a digit (image models) or fill in the features, with the class
 * probabilities as they change, and POST /api/predict {"input": [one value per input]} → {"predicted",
 * "probabilities"}: pixels 0..255 for an image model, the raw features (scaled as the model was trained) for others. The model is read once; no part of a request names a file.
 */
export async function serveModel(
  source: ModelSource,
  options: ServeOptions = {},
): Promise<Listening & { info: ModelInfo }> {
  checkOptions(options, ['port', 'host'], 'serveModel');
  const model = resolveModel(source, 'serveModel');
  const info = modelInfo(model);
  const inputs = model.layout.layers[0];
  // A body of `inputs` numbers (bytes, or a table's features in full precision) with commas and some spaces.
  const bodyLimit = Math.max(16 * 1024, inputs * (info.input.kind === 'image' ? 8 : 32));
  const classNames = outputNames(model.input, model.layout.layers[model.layout.layers.length - 1]);
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/') {
      if (allow(req, res, 'GET')) sendPage(res, SERVE_PAGE);
    } else if (path === '/api/model') {
      if (allow(req, res, 'GET')) sendJson(res, 200, info);
    } else if (path === '/api/predict') {
      if (!allow(req, res, 'POST')) return;
      const body = await readJson(req, bodyLimit);
      const raw = info.input.kind === 'image' ? pixelsOf(body, inputs) : featuresOf(body, inputs);
      const features = model.input.featureNames;
      const notices = inputNotices(model.input, raw, inputs, 'the input', (_, k) =>
        features ? `input[${k}] (${JSON.stringify(features[k])})` : `input[${k}]`,
      );
      const empty = raw instanceof Uint8Array ? emptyImageNotice(raw, 'the image') : null;
      if (empty) notices.push(empty);
      let answer: Answer;
      try {
        answer = classifyRow(model, raw, classNames, 'the input');
      } catch (err) {
        if (err instanceof UserError) throw new HttpError(400, err.message);
        throw err;
      }
      sendJson(res, 200, {
        // A model of named classes answers with the name too, as predict --csv does.
        ...answer,
        // What predict would print as notices: an empty image, pixels scaled already, features far outside the training rows.
        ...(notices.length > 0 ? { notices } : {}),
      });
    } else {
      sendJson(res, 404, { error: `${path}: not found (the page is /, the API /api/predict and /api/model)` });
    }
  };
  const listening = await listen(handler, options.port ?? DEFAULT_SERVE_PORT, options.host ?? DEFAULT_HOST);
  return { ...listening, info };
}

/** The request's "input" array of `inputs` values, or a 400 that says what is wrong with it. */
function inputArray(body: unknown, inputs: number, what: string): unknown[] {
  const input =
    typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { input?: unknown }).input : undefined;
  if (!Array.isArray(input)) throw new HttpError(400, `expected {"input": [${inputs} ${what}]}`);
  if (input.length !== inputs) throw new HttpError(400, `input has ${input.length} values; the model takes ${inputs}`);
  return input;
}

/** A table model's raw features as float32 values (as a CSV cell is read), before the model's scaling. */
function featuresOf(body: unknown, inputs: number): Float32Array {
  const input = inputArray(body, inputs, 'numbers, one per feature');
  const values = new Float32Array(inputs);
  for (let i = 0; i < inputs; i++) {
    const v = input[i];
    if (typeof v !== 'number')
      throw new HttpError(400, `input[${i}] is ${JSON.stringify(v)}; each value is a finite number`);
    values[i] = v;
    // JSON's 1e400 parses as Infinity, and a double beyond float32's range is Infinity to the model.
    if (!Number.isFinite(values[i]))
      throw new HttpError(400, `input[${i}] is ${jsonNumber(v)}, beyond float32's range (±3.4e38)`);
  }
  return values;
}

/** An image model's input as bytes, or a 400 that says what is wrong with it. */
function pixelsOf(body: unknown, inputs: number): Uint8Array {
  const input = inputArray(body, inputs, 'integers from 0 to 255');
  const bytes = new Uint8Array(inputs);
  for (let i = 0; i < inputs; i++) {
    const v = input[i] as number;
    if (!Number.isInteger(v) || v < 0 || v > 255)
      throw new HttpError(400, `input[${i}] is ${jsonNumber(v)}; each value is an integer from 0 to 255`);
    bytes[i] = v;
  }
  return bytes;
}

/** A request's value as its JSON said it, near enough: a number too large for a double parsed as ±Infinity. */
function jsonNumber(v: unknown): string {
  if (v === Number.POSITIVE_INFINITY) return 'over 1.8e308';
  if (v === Number.NEGATIVE_INFINITY) return 'under -1.8e308';
  return JSON.stringify(v);
}
