import { UserError } from '../errors.js';

/**
 * Input scaling (--scale): every feature k becomes x' = fround((x - offset[k]) / divisor[k]), x a float32
 * value and the arithmetic in float64. `255` is offset 0, divisor 255: for bytes exactly the PIXEL_SCALE
 * table of the IDX path. The statistics come from the training rows only, summed in row order in float64;
 * they are stored with the model (checkpoint, safetensors metadata) so eval, predict and exports apply the
 * same transform.
 */
export type ScaleKind = 'standard' | 'minmax' | '255' | 'none';
export const SCALE_KINDS: readonly ScaleKind[] = ['standard', 'minmax', '255', 'none'];

export interface InputScaling {
  kind: ScaleKind;
  /** Per feature for standard (the mean) and minmax (the minimum); empty for 255 and none (0). */
  offset: number[];
  /** Per feature for standard (the population standard deviation) and minmax (max − min); a constant feature gets 1. */
  divisor: number[];
}

export function checkScaleKind(kind: unknown): ScaleKind {
  if (!SCALE_KINDS.includes(kind as ScaleKind))
    throw new UserError(`--scale ${String(kind)}: must be one of ${SCALE_KINDS.join(', ')}`);
  return kind as ScaleKind;
}

/** The statistics of `kind` over `rows` rows of `width` raw features (float32 values), in row order. */
export function fitScaling(kind: ScaleKind, raw: Float32Array, rows: number, width: number): InputScaling {
  if (kind === '255' || kind === 'none') return { kind, offset: [], divisor: [] };
  const offset = new Array<number>(width).fill(0);
  const divisor = new Array<number>(width).fill(0);
  if (kind === 'minmax') {
    const min = new Float64Array(width).fill(Infinity);
    const max = new Float64Array(width).fill(-Infinity);
    for (let r = 0; r < rows; r++) {
      for (let k = 0, at = r * width; k < width; k++, at++) {
        const x = raw[at];
        if (x < min[k]) min[k] = x;
        if (x > max[k]) max[k] = x;
      }
    }
    for (let k = 0; k < width; k++) {
      offset[k] = min[k];
      divisor[k] = max[k] > min[k] ? max[k] - min[k] : 1;
    }
    return { kind, offset, divisor };
  }
  const sum = new Float64Array(width);
  for (let r = 0; r < rows; r++) for (let k = 0, at = r * width; k < width; k++, at++) sum[k] += raw[at];
  for (let k = 0; k < width; k++) offset[k] = sum[k] / rows;
  const squares = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    for (let k = 0, at = r * width; k < width; k++, at++) {
      const d = raw[at] - offset[k];
      squares[k] += d * d;
    }
  }
  for (let k = 0; k < width; k++) {
    const std = Math.sqrt(squares[k] / rows);
    divisor[k] = std > 0 ? std : 1;
  }
  return { kind, offset, divisor };
}

/** Applies the scaling in place to rows of `width` float32 features. */
export function applyScaling(scaling: InputScaling, values: Float32Array, width: number): Float32Array {
  const { kind, offset, divisor } = scaling;
  if (kind === 'none') return values;
  if (kind === '255') {
    for (let i = 0; i < values.length; i++) values[i] = values[i] / 255;
    return values;
  }
  for (let i = 0, k = 0; i < values.length; i++) {
    values[i] = (values[i] - offset[k]) / divisor[k];
    if (++k === width) k = 0;
  }
  return values;
}

/** Bytes as float32 features scaled by `scaling` (a byte dataset trained with another --scale than 255). */
export function scaledBytes(scaling: InputScaling, bytes: Uint8Array, width: number): Float32Array {
  return applyScaling(scaling, Float32Array.from(bytes), width);
}

/** A stored scaling (checkpoint body or safetensors metadata), checked: `where` names the file. */
export function checkStoredScaling(value: unknown, width: number, where: string): InputScaling {
  const s = value as Partial<InputScaling> | null;
  const perFeature = s?.kind === 'standard' || s?.kind === 'minmax';
  const ok =
    typeof s === 'object' &&
    s !== null &&
    SCALE_KINDS.includes(s.kind as ScaleKind) &&
    Array.isArray(s.offset) &&
    Array.isArray(s.divisor) &&
    (perFeature
      ? s.offset.length === width && s.divisor.length === width
      : s.offset.length === 0 && s.divisor.length === 0) &&
    [...s.offset, ...s.divisor].every((v) => typeof v === 'number' && Number.isFinite(v)) &&
    s.divisor.every((v) => v !== 0);
  if (!ok) throw new UserError(`${where}: corrupt input scaling`);
  return { kind: s.kind as ScaleKind, offset: s.offset as number[], divisor: s.divisor as number[] };
}

/** What a model made before --scale existed was trained on: bytes over 255. */
export const BYTE_SCALING: InputScaling = { kind: '255', offset: [], divisor: [] };

/** How a model reads its inputs, stored with it (checkpoint, safetensors metadata) for eval, predict and exports. */
export interface ModelInput {
  scaling: InputScaling;
  /** String labels' names: class i is classNames[i]. Absent for integer labels. */
  classNames?: string[];
  /** The feature columns of a CSV table, in order: what predict --csv expects. */
  featureNames?: string[];
  /** A CSV table's label column: the one column predict --csv and eval --data take beside the features. */
  labelName?: string;
}

/**
 * Each output's class name: the model's names, then, for outputs beyond its data's classes (a wider last
 * layer given with --layers), the output's number. Undefined for a model of integer labels.
 */
export function outputNames(input: ModelInput | undefined, outputs: number): string[] | undefined {
  const names = input?.classNames;
  return names && Array.from({ length: outputs }, (_, c) => names[c] ?? String(c));
}

/** Each output's label as a CSV file or a page shows it: its class name, else its number. */
export function outputLabels(input: ModelInput | undefined, outputs: number): string[] {
  return outputNames(input, outputs) ?? Array.from({ length: outputs }, (_, c) => String(c));
}

/** A stored ModelInput, checked against the model's layers (absent: a model from before --scale, bytes over 255). */
export function checkStoredInput(value: unknown, layers: readonly number[], where: string): ModelInput {
  const width = layers[0];
  const classes = layers[layers.length - 1];
  if (value === undefined || value === null) return { scaling: BYTE_SCALING };
  const v = value as Partial<ModelInput>;
  const strings = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === 'string');
  if (
    typeof v !== 'object' ||
    (v.classNames !== undefined && !strings(v.classNames)) ||
    (v.featureNames !== undefined && !strings(v.featureNames)) ||
    (v.labelName !== undefined && typeof v.labelName !== 'string')
  ) {
    throw new UserError(`${where}: corrupt input description (class, feature or label names)`);
  }
  // Fewer names than outputs is a model trained with more outputs (--layers) than its data has classes.
  if (v.classNames && v.classNames.length > classes)
    throw new UserError(`${where}: ${v.classNames.length} class names for ${classes} output classes`);
  if (v.featureNames && v.featureNames.length !== width)
    throw new UserError(`${where}: ${v.featureNames.length} feature names for ${width} inputs`);
  const input: ModelInput = { scaling: checkStoredScaling(v.scaling, width, where) };
  if (v.classNames) input.classNames = v.classNames;
  if (v.featureNames) input.featureNames = v.featureNames;
  if (v.labelName !== undefined) input.labelName = v.labelName;
  return input;
}

/**
 * A ModelInput as safetensors __metadata__ (strings only): input_scale ('1/255' as before --scale existed,
 * or standard, minmax, none), input_offset and input_divisor (JSON arrays, per feature), class_names and
 * feature_names (JSON arrays), label_name (the column's name as written). x' = (x - input_offset[k]) / input_divisor[k], rounded to float32.
 */
export function inputMetadata(input: ModelInput | undefined): Record<string, string> {
  if (!input) return {};
  const { scaling, classNames, featureNames, labelName } = input;
  const out: Record<string, string> = { input_scale: scaling.kind === '255' ? '1/255' : scaling.kind };
  if (scaling.offset.length > 0) {
    out.input_offset = JSON.stringify(scaling.offset);
    out.input_divisor = JSON.stringify(scaling.divisor);
  }
  if (classNames) out.class_names = JSON.stringify(classNames);
  if (featureNames) out.feature_names = JSON.stringify(featureNames);
  if (labelName !== undefined) out.label_name = labelName;
  return out;
}

/** inputMetadata read back; a safetensors file from before --scale (or from elsewhere) reads bytes over 255. */
export function inputFromMetadata(
  metadata: Record<string, string>,
  layers: readonly number[],
  where: string,
): ModelInput {
  const json = (key: string): unknown => {
    if (metadata[key] === undefined) return undefined;
    try {
      return JSON.parse(metadata[key]);
    } catch {
      throw new UserError(`${where}: __metadata__ ${key} is not JSON`);
    }
  };
  const scale = metadata.input_scale;
  const kind = scale === undefined || scale === '1/255' ? '255' : scale;
  const scaling = { kind, offset: json('input_offset') ?? [], divisor: json('input_divisor') ?? [] };
  return checkStoredInput(
    { scaling, classNames: json('class_names'), featureNames: json('feature_names'), labelName: metadata.label_name },
    layers,
    where,
  );
}
