import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { lazyPackage } from '../packages.js';
import { unreadableFile, UserError } from '../errors.js';

/** fflate (~30 ms to load) only when a .npz file is read. */
const fflate = lazyPackage<typeof import('fflate')>('fflate');

/**
 * NumPy's .npy format (hand-written: the header is tiny and its errors are part of the contract):
 *   \x93NUMPY, major, minor, header length (u16 for version 1, u32 for 2 and 3), then a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), } padded with spaces, then the data.
 * lockstep reads little-endian (or byte-sized) numbers in C order; anything else is refused by name.
 */
export interface NpyArray {
  /** The dtype as the header spells it, e.g. '<f4' or '|u1'. */
  dtype: string;
  shape: number[];
  data:
    | Uint8Array
    | Int8Array
    | Uint16Array
    | Int16Array
    | Uint32Array
    | Int32Array
    | BigInt64Array
    | BigUint64Array
    | Float32Array
    | Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type TypedCtor = new (buffer: ArrayBuffer, offset: number, length: number) => NpyArray['data'];
const DTYPES: Record<string, { bytes: number; ctor: TypedCtor }> = {
  u1: { bytes: 1, ctor: Uint8Array },
  i1: { bytes: 1, ctor: Int8Array },
  u2: { bytes: 2, ctor: Uint16Array },
  i2: { bytes: 2, ctor: Int16Array },
  u4: { bytes: 4, ctor: Uint32Array },
  i4: { bytes: 4, ctor: Int32Array },
  u8: { bytes: 8, ctor: BigUint64Array },
  i8: { bytes: 8, ctor: BigInt64Array },
  f4: { bytes: 4, ctor: Float32Array },
  f8: { bytes: 8, ctor: Float64Array },
};

export function readNpyFile(path: string): NpyArray {
  return parseNpy(readBytes(path), path);
}

export function parseNpy(bytes: Uint8Array, path: string): NpyArray {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b))
    throw new UserError(`${path}: not a .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6];
  if (major < 1 || major > 3)
    throw new UserError(`${path}: .npy format version ${major}.${bytes[7]}; lockstep reads versions 1 to 3`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lengthBytes + headerLength;
  if (bytes.length < dataStart) throw new UserError(`${path}: truncated .npy header`);
  const header = new TextDecoder().decode(bytes.subarray(8 + lengthBytes, dataStart));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new UserError(`${path}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  }
  if (fortran === 'True')
    throw new UserError(`${path}: Fortran-order (column-major) array; lockstep reads C order (np.ascontiguousarray)`);
  const order = descr[0];
  const kind = descr.slice(1);
  const type = DTYPES[kind];
  if (!['<', '>', '|', '='].includes(order) || type === undefined) {
    throw new UserError(`${path}: unknown dtype '${descr}'; lockstep reads uint8, float32, float64 and integer labels`);
  }
  if (order === '>' && type.bytes > 1)
    throw new UserError(`${path}: big-endian dtype '${descr}'; lockstep reads little-endian (.astype('<${kind}'))`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new UserError(`${path}: bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * type.bytes;
  const actual = bytes.length - dataStart;
  if (actual !== expected) {
    throw new UserError(
      `${path}: the header says shape (${shape.join(', ')}) of '${descr}' = ${expected} bytes, the file has ${actual}`,
    );
  }
  // Typed arrays need aligned offsets: copy the data out when it is not.
  const offset = bytes.byteOffset + dataStart;
  const aligned = offset % type.bytes === 0 ? bytes : null;
  const data = aligned
    ? new type.ctor(aligned.buffer as ArrayBuffer, offset, count)
    : new type.ctor(Uint8Array.from(bytes.subarray(dataStart)).buffer, 0, count); // a copy: Buffer's slice would be a view
  return { dtype: descr, shape, data };
}

/** The arrays of an .npz file (a zip of .npy files, as np.savez and np.savez_compressed write), by name without .npy. */
export function readNpzFile(path: string): Map<string, () => NpyArray> {
  const bytes = readBytes(path);
  if (!(bytes[0] === 0x50 && bytes[1] === 0x4b)) throw new UserError(`${path}: not an .npz file (not a zip archive)`);
  let entries: Map<string, () => Uint8Array> | null = null;
  try {
    entries = zipEntries(bytes);
  } catch {
    entries = null;
  }
  if (!entries) {
    try {
      entries = new Map(Object.entries(fflate().unzipSync(bytes)).map(([name, content]) => [name, () => content]));
    } catch (err) {
      throw new UserError(`${path}: corrupt zip archive (${(err as Error).message})`);
    }
  }
  const arrays = new Map<string, () => NpyArray>();
  for (const [name, content] of entries) {
    if (name.endsWith('.npy')) arrays.set(name.slice(0, -4), () => parseNpy(content(), `${path}: ${name}`));
  }
  if (arrays.size === 0) {
    const names = [...entries.keys()].slice(0, 5).join(', ') || 'nothing';
    throw new UserError(`${path}: a zip that is not an .npz (no .npy arrays; it holds ${names})`);
  }
  return arrays;
}

/**
 * The fast path of an .npz: the zip's central directory read here, stored entries used in place and deflated
 * ones inflated by Node's zlib; null for anything else (encryption, other methods), which fflate reads.
 * Measured against fflate alone: docs/benchmarks.md, "Loading data".
 */
function zipEntries(bytes: Uint8Array): Map<string, () => Uint8Array> | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return null;
  let entries = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  if (entries === 0xffff || offset === 0xffffffff) {
    // Zip64: the locator just before the end record points at the zip64 end record.
    if (eocd < 20 || view.getUint32(eocd - 20, true) !== 0x07064b50) return null;
    const end64 = Number(view.getBigUint64(eocd - 12, true));
    if (view.getUint32(end64, true) !== 0x06064b50) return null;
    entries = Number(view.getBigUint64(end64 + 32, true));
    offset = Number(view.getBigUint64(end64 + 48, true));
  }
  const out = new Map<string, () => Uint8Array>();
  const decoder = new TextDecoder();
  for (let e = 0; e < entries; e++) {
    if (view.getUint32(offset, true) !== 0x02014b50) return null;
    const flags = view.getUint16(offset + 8, true);
    const method = view.getUint16(offset + 10, true);
    let compressed = view.getUint32(offset + 20, true);
    let size = view.getUint32(offset + 24, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    let local = view.getUint32(offset + 42, true);
    const name = decoder.decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    // The zip64 extra field holds, in this order, those of the three that are 0xffffffff above.
    for (let x = offset + 46 + nameLength; x < offset + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(x, true);
      const length = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let at = x + 4;
        const next = () => {
          const v = Number(view.getBigUint64(at, true));
          at += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressed === 0xffffffff) compressed = next();
        if (local === 0xffffffff) local = next();
      }
      x += 4 + length;
    }
    if ((flags & 1) !== 0 || (method !== 0 && method !== 8)) return null;
    if (view.getUint32(local, true) !== 0x04034b50) return null;
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + compressed > bytes.length) return null;
    const data = bytes.subarray(start, start + compressed);
    out.set(name, method === 0 ? () => data : () => inflateRawSync(data));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err);
  }
}

/** Writes a C-order little-endian .npy (tests and users preparing data): dtype '|u1', '<f4', '<f8', '<i8'… */
export function encodeNpy(
  dtype: string,
  shape: readonly number[],
  data: ArrayBufferView,
  options: { fortran?: boolean } = {},
): Uint8Array {
  const dict = `{'descr': '${dtype}', 'fortran_order': ${options.fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
