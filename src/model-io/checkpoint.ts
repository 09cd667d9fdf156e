import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { Packr } from 'msgpackr';
import { unreadableFile, UserError } from '../errors.js';
import { requirePackage } from '../packages.js';
import { paramsSha256 } from '../model/hash.js';
import { modelLayout } from '../model/layout.js';
import { OPTIMIZERS, stateArrays } from '../optim/optimizer.js';
import type { TrainConfig } from '../train/config.js';
import type { EpochReport, TrainSnapshot, TrainState } from '../train/train.js';
import { withCurrentNames } from './older-names.js';
import type { Model } from './model.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { looksLikeSafetensors } from './safetensors.js';
import { checkStoredInput, type ModelInput } from '../data/scaling.js';

/**
 * A checkpoint: one msgpack file holding everything needed to continue a run bit for bit (ARCHITECTURE.md,
 * invariant 7). An envelope {format, version, sha256, body} wraps the body, itself msgpack: layer sizes, the
 * parameters (float32 little-endian bytes, in layout order) and their sha256, the loop state (epoch,
 * position in it, generator state before the epoch's shuffle, running sums, the history of epoch reports)
 * and the run's config. The body's sha256 catches any corrupted byte, not only in the parameters.
 *
 * Version 2 adds the optimizer's state (float32 little-endian bytes, its arrays one after another, each in
 * layout order; empty for sgd) and the optimizer settings in the config. Version 1 (before optimizers) is
 * read as plain SGD with a constant rate and no state.
 */
export const CHECKPOINT_FORMAT = 'lockstep-checkpoint';
export const CHECKPOINT_VERSION = 2;
const READABLE_VERSIONS = [1, 2];

/** A checkpoint read back: the model (its input a checkpoint from before --scale reads as bytes over 255) and its run. */
export interface Checkpoint extends Model {
  dataSha256: string;
  state: TrainState;
  config: TrainConfig;
  /** The optimizer's state (TrainSnapshot.optimizerState); empty for sgd and for a version-1 checkpoint. */
  optimizerState: Float32Array;
  /** The files the run writes besides its checkpoint; none in a checkpoint written before they were kept. */
  files: RunFiles;
}

/** The files a run writes besides its checkpoint (--log, --save-best), as absolute paths: a resume goes on writing them. */
export interface RunFiles {
  log?: string;
  saveBest?: string;
}

interface Envelope {
  format: string;
  version: number;
  sha256: string;
  body: Uint8Array;
}

interface CheckpointBody {
  layers: number[];
  dataSha256: string;
  params: Uint8Array;
  paramsSha256: string;
  state: TrainState;
  config: TrainConfig;
  savedAt: string;
  input?: ModelInput;
  optimizerState?: Uint8Array;
  files?: RunFiles;
}

/** msgpackr (~40 ms to load) only for runs that read or write a checkpoint. */
let packer: Packr | undefined;
const packr = (): Packr =>
  (packer ??= new (requirePackage<typeof import('msgpackr')>('msgpackr').Packr)({ useRecords: false }));

export function encodeCheckpoint(snapshot: TrainSnapshot, files: RunFiles = {}): Uint8Array {
  const params = Float32Array.from(snapshot.params);
  const optimizerState = Float32Array.from(snapshot.optimizerState ?? []);
  const optimizer = snapshot.config.optimizer ?? 'sgd';
  if (optimizerState.length !== stateArrays(optimizer) * params.length) {
    throw new RangeError(
      `checkpoint: ${optimizerState.length} optimizer state values where --optimizer ${optimizer} has ${stateArrays(optimizer) * params.length}`,
    );
  }
  const body: CheckpointBody = {
    layers: snapshot.layout.layers,
    dataSha256: snapshot.dataSha256,
    params: new Uint8Array(params.buffer),
    paramsSha256: paramsSha256(params),
    state: snapshot.state,
    config: snapshot.config,
    savedAt: new Date().toISOString(),
    input: snapshot.input,
    optimizerState: new Uint8Array(optimizerState.buffer),
    files,
  };
  // Packr reuses its output buffer: copy before anything else is packed.
  const bodyBytes = Uint8Array.from(packr().pack(body));
  const envelope: Envelope = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    sha256: sha256(bodyBytes),
    body: bodyBytes,
  };
  return Uint8Array.from(packr().pack(envelope));
}

/**
 * Writes a checkpoint atomically. An existing file at `path` is replaced only if it is itself a lockstep
 * checkpoint: a checkpoint path that names some other file is a typo that would destroy it.
 */
export function writeCheckpoint(path: string, snapshot: TrainSnapshot, files: RunFiles = {}): void {
  // A damaged checkpoint here is this run's own (train checked the file before its first step).
  refuseToOverwriteForeignFile(path, path, true);
  writeFileAtomic(path, encodeCheckpoint(snapshot, files));
}

/**
 * Throws (the message starting with `label`) if `path` exists and is not a lockstep checkpoint; a damaged one
 * (cut short: its format tag is there, msgpack cannot read the rest) is replaced only with `force`.
 */
export function refuseToOverwriteForeignFile(path: string, label: string, force: boolean): void {
  if (!existsSync(path)) return;
  const bytes = readFileSync(path);
  try {
    if ((packr().unpack(bytes) as Partial<Envelope>)?.format === CHECKPOINT_FORMAT) return;
  } catch {
    if (taggedCheckpoint(bytes)) {
      if (force) return;
      throw new UserError(`${label}: a damaged lockstep checkpoint; pass --force to replace it, or name another file`);
    }
  }
  throw new UserError(`${label}: exists and is not a lockstep checkpoint; refusing to overwrite it`);
}

/** Whether a file msgpack cannot read begins as a checkpoint does (its envelope's format tag comes first). */
function taggedCheckpoint(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 64)).includes(CHECKPOINT_FORMAT);
}

export function readCheckpoint(path: string): Checkpoint {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err, 'checkpoint');
  }
  return decodeCheckpoint(bytes, path);
}

export function decodeCheckpoint(bytes: Uint8Array, path: string): Checkpoint {
  const bad = (what: string) => new UserError(`${path}: corrupt checkpoint: ${what}`);
  let envelope: Partial<Envelope>;
  try {
    envelope = packr().unpack(bytes) as Partial<Envelope>;
  } catch (err) {
    if (taggedCheckpoint(bytes))
      throw bad(
        (err as { incomplete?: boolean }).incomplete ? `cut short (${bytes.length} bytes)` : 'unreadable envelope',
      );
    throw new UserError(
      looksLikeSafetensors(bytes)
        ? `${path}: a safetensors model, not a checkpoint (eval, predict, export and --init read it; --resume needs a checkpoint)`
        : `${path}: not a lockstep checkpoint (not msgpack, or truncated)`,
    );
  }
  if (typeof envelope !== 'object' || envelope === null || envelope.format !== CHECKPOINT_FORMAT) {
    throw new UserError(`${path}: not a lockstep checkpoint (no "${CHECKPOINT_FORMAT}" format tag)`);
  }
  if (!READABLE_VERSIONS.includes(envelope.version as number)) {
    throw new UserError(
      `${path}: checkpoint format version ${String(envelope.version)}; this lockstep reads versions ${READABLE_VERSIONS.join(' and ')}`,
    );
  }
  if (!(envelope.body instanceof Uint8Array) || sha256(envelope.body) !== envelope.sha256)
    throw bad('checksum mismatch');
  let file: Partial<CheckpointBody>;
  try {
    file = packr().unpack(envelope.body) as Partial<CheckpointBody>;
  } catch {
    throw bad('unreadable body');
  }
  const { layers, state, config } = file;
  if (!Array.isArray(layers) || layers.length < 2 || !layers.every((n) => Number.isSafeInteger(n) && n > 0))
    throw bad('layer sizes');
  const layout = modelLayout(layers);
  if (!(file.params instanceof Uint8Array) || file.params.length !== layout.paramCount * 4) {
    throw bad(
      `parameters: ${file.params?.length ?? 0} bytes where layers ${layers.join(',')} need ${layout.paramCount * 4}`,
    );
  }
  // Copy: unpacked binaries are views into the file's buffer, possibly unaligned for float32.
  const params = new Float32Array(Uint8Array.from(file.params).buffer);
  if (paramsSha256(params) !== file.paramsSha256) throw bad('parameters do not match their sha256');
  if (!isState(state)) throw bad('training state');
  state.history = state.history.map(withCurrentNames);
  if (
    typeof config !== 'object' ||
    config === null ||
    !Array.isArray(config.layers) ||
    config.layers.join(',') !== layers.join(',')
  ) {
    throw bad('config');
  }
  // '' (or absent): written without a fingerprint, so a resume cannot check its data.
  const dataSha256 = typeof file.dataSha256 === 'string' ? file.dataSha256 : '';
  const optimizer = config.optimizer ?? 'sgd';
  if (!(OPTIMIZERS as readonly unknown[]).includes(optimizer)) throw bad(`optimizer ${String(optimizer)}`);
  const stateBytes = envelope.version === 1 ? new Uint8Array(0) : file.optimizerState;
  const expected = stateArrays(optimizer) * layout.paramCount * 4;
  if (!(stateBytes instanceof Uint8Array) || stateBytes.length !== expected) {
    throw bad(`optimizer state: ${stateBytes?.length ?? 0} bytes where --optimizer ${optimizer} needs ${expected}`);
  }
  const optimizerState = new Float32Array(Uint8Array.from(stateBytes).buffer);
  const files = file.files ?? {};
  if (
    typeof files !== 'object' ||
    files === null ||
    ![files.log, files.saveBest].every((f) => f === undefined || (typeof f === 'string' && f !== ''))
  ) {
    throw bad('run files');
  }
  return {
    layout,
    params,
    state,
    config,
    dataSha256,
    input: checkStoredInput(file.input, layers, path),
    optimizerState,
    files,
  };
}

function isState(s: unknown): s is TrainState {
  if (typeof s !== 'object' || s === null) return false;
  const t = s as Partial<TrainState>;
  const nonNegInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  return (
    nonNegInt(t.epoch) &&
    (t.epoch as number) >= 1 &&
    nonNegInt(t.stepInEpoch) &&
    nonNegInt(t.steps) &&
    Array.isArray(t.rngState) &&
    t.rngState.length === 4 &&
    t.rngState.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) &&
    t.rngState.some((w) => w !== 0) &&
    typeof t.epochLossSum === 'number' &&
    typeof t.epochSeen === 'number' &&
    typeof t.epochTrainSeconds === 'number' &&
    Array.isArray(t.history) &&
    t.history.every((h: EpochReport) => typeof h === 'object' && h !== null && h.event === 'epoch')
  );
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
