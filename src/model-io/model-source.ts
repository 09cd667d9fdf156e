import { describe } from '../words.js';
import { UserError } from '../errors.js';
import { checkParamsFit, type Model } from './model.js';
import { modelLayout } from '../model/layout.js';
import { loadModel } from './model-file.js';
import { checkStoredInput, type ModelInput } from '../data/scaling.js';

/**
 * A trained model held in memory: what train() returns ({params, layout, config}), a checkpoint read
 * back with readCheckpoint ({params, layers, config}), or any {params, layers} made by hand.
 */
interface TrainedModelBase {
  params: Float32Array;
  /** The run's settings: their `data` is the default data directory of evaluate and predict. */
  config?: { data?: string; testData?: string; label?: string; labels?: string };
  /** How the model reads its inputs (what train() returns); absent: bytes over 255, as MNIST. */
  input?: ModelInput;
}

/** One of the two carries the layer sizes: a model without them is refused by the type, not only when run. */
export type TrainedModel = TrainedModelBase &
  (
    | {
        /** The layer sizes, as train() returns them... */
        layout: { layers: readonly number[] };
        layers?: readonly number[];
      }
    | {
        layout?: { layers: readonly number[] };
        /** ...or as a plain list, input to output, e.g. [784, 128, 64, 10]. */
        layers: readonly number[];
      }
  );

/** What evaluate and predict take: a model file's path (checkpoint or safetensors), or a model in memory. */
export type ModelSource = string | TrainedModel;

/** A model ready to run: `name` is the file's path, or "model in memory". */
export interface ResolvedModel extends Model {
  name: string;
  /** The data directory the model was trained on, when known. */
  data?: string;
  /** The rest of the run's data flags (a CSV's --test-data and --label, an .npy's --labels). */
  dataFlags?: { testData?: string; label?: string; labels?: string };
}

const EXPECTED =
  'a model file path, or a trained model in memory (what train() returns, or {params: Float32Array, layers: number[]})';

/** Checks what a library caller passed (plain JavaScript can pass anything) and says what was expected. */
export function resolveModel(source: unknown, caller: string): ResolvedModel {
  if (typeof source === 'string') {
    const model = loadModel(source);
    const config = model.checkpoint?.config;
    return {
      name: source,
      layout: model.layout,
      params: model.params,
      data: config?.data,
      input: model.input,
      dataFlags: { testData: config?.testData, label: config?.label, labels: config?.labels },
    };
  }
  const { params, layout, layers, config, input } = (typeof source === 'object' ? (source ?? {}) : {}) as Partial<
    Record<keyof TrainedModel, unknown>
  >;
  if (params === undefined) throw new UserError(`${caller}: expected ${EXPECTED}; got ${describe(source)}`);
  if (!(params instanceof Float32Array)) {
    throw new UserError(`${caller}: the model's params must be a Float32Array; got ${describe(params)}`);
  }
  const sizes =
    layers ?? (typeof layout === 'object' && layout !== null ? (layout as { layers?: unknown }).layers : undefined);
  if (!Array.isArray(sizes) || sizes.length < 2 || !sizes.every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw new UserError(
      `${caller}: the model's layers must be 2 or more positive integers (layers: [784, 128, 64, 10], or the layout train() returns); got ${describe(sizes)}`,
    );
  }
  const resolved = modelLayout(sizes as number[]);
  checkParamsFit(resolved, params, `${caller}: the model's params`, `${caller}: the model`);
  const flags = (typeof config === 'object' && config !== null ? config : {}) as Record<string, unknown>;
  const text = (key: string) => (typeof flags[key] === 'string' ? (flags[key] as string) : undefined);
  return {
    name: 'model in memory',
    layout: resolved,
    params,
    data: text('data'),
    dataFlags: { testData: text('testData'), label: text('label'), labels: text('labels') },
    input: checkStoredInput(input, resolved.layers, `${caller}: the model's input`),
  };
}

/**
 * Refuses an options argument that is not an object, or that has a key the function does not know (a typo);
 * `known` null: any key (the function checks its keys itself, as train's options are).
 */
export function checkOptions(
  options: unknown,
  known: readonly string[] | null,
  caller: string,
  required = false,
): void {
  if (options === undefined && !required) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    const keys = known ? ` ({${known.join(', ')}})` : '';
    throw new UserError(`${caller}: options must be an object${keys}; got ${describe(options)}`);
  }
  if (known === null) return;
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new UserError(`${caller}: unknown option "${key}" (known: ${known.join(', ')})`);
  }
}

/** An options type's names, each listed once and the list checked complete by the type: what checkOptions knows. */
export function optionNames<T>(names: Record<keyof T, true>): (keyof T & string)[] {
  return Object.keys(names) as (keyof T & string)[];
}
