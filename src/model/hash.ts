import { createHash } from 'node:crypto';

/** sha256 of the parameters' float32 bytes in layout order (layer by layer, weight then bias): a run's fingerprint. */
export function paramsSha256(params: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength))
    .digest('hex');
}
