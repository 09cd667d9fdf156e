import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { unreadableFile, UserError } from '../errors.js';

/**
 * The IDX format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST):
 *   bytes 0-1  zero
 *   byte  2    element type (0x08 = unsigned byte, the only one these datasets use)
 *   byte  3    number of dimensions d
 *   4·d bytes  each dimension, big-endian uint32
 *   then       the elements, row-major, exactly the product of the dimensions
 * A file may be gzipped; that is detected by the gzip magic bytes (1f 8b), never by the name.
 */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;
const TYPE_NAMES: Record<number, string> = { 8: 'ubyte', 9: 'byte', 11: 'short', 12: 'int', 13: 'float', 14: 'double' };

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads and validates an IDX file of unsigned bytes with the expected number of dimensions. */
export function readIdxFile(path: string, expectedDims: number): IdxArray {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw unreadableFile(path, err);
  }
  let bytes = raw;
  if (isGzip(raw)) {
    try {
      bytes = gunzipSync(raw);
    } catch (err) {
      throw new UserError(`${path}: corrupt gzip stream (${(err as Error).message})`);
    }
  }
  return parseIdx(bytes, path, expectedDims);
}

export function parseIdx(bytes: Uint8Array, path: string, expectedDims: number): IdxArray {
  if (bytes.length < 4)
    throw new UserError(`${path}: truncated header: ${bytes.length} bytes, an IDX header needs at least 4`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw new UserError(`${path}: wrong magic number 0x${magic}: not an IDX file`);
  }
  const type = bytes[2];
  if (type !== UBYTE) {
    const name = TYPE_NAMES[type] ?? 'unknown';
    throw new UserError(
      `${path}: wrong type byte 0x${type.toString(16).padStart(2, '0')} (${name}); lockstep reads unsigned-byte (0x08) IDX files`,
    );
  }
  const ndims = bytes[3];
  if (ndims !== expectedDims) {
    throw new UserError(
      `${path}: has ${ndims} dimensions, expected ${expectedDims} (${expectedDims === 1 ? 'labels' : 'images'})`,
    );
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new UserError(
      `${path}: truncated header: ${bytes.length} bytes, the ${ndims} dimensions need ${headerBytes}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    if (d === 0) throw new UserError(`${path}: dimension ${i} is 0: the file holds no data`);
    dims.push(d);
  }
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  // "60000×28×28 = 47040000 bytes"; a one-dimensional file (labels) just "60000 bytes"
  const declared = dims.length > 1 ? `${dims.join('×')} = ${expected} bytes` : `${expected} bytes`;
  if (actual < expected) {
    throw new UserError(`${path}: truncated data: the header says ${declared}, the file has ${actual}`);
  }
  if (actual > expected) {
    throw new UserError(`${path}: ${actual - expected} trailing bytes after the ${declared} the header declares`);
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Writes an unsigned-byte IDX file's bytes (used by tests and by users preparing their own data). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
