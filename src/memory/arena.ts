/**
 * One shared WebAssembly.Memory holds everything a step touches: parameters, the dataset's bytes, the
 * epoch's order, activations, deltas, the control block. It is backed by a SharedArrayBuffer, so every
 * worker sees the same bytes with no copy, and the WebAssembly kernels address the same buffers by offset.
 *
 * The first RESERVED_BYTES belong to the kernel module (its static data and stack); buffers are carved
 * after that, 64-byte aligned (a cache line, and more than SIMD128 needs), by a bump allocator: a plan of
 * sizes first, so the memory is created once at its final size and never grows under running workers.
 */
export const WASM_PAGE = 65536;
export const RESERVED_BYTES = WASM_PAGE;
const ALIGN = 64;

export class SharedArena {
  readonly memory: WebAssembly.Memory;
  private next = RESERVED_BYTES;

  constructor(readonly capacityBytes: number) {
    const pages = Math.ceil((RESERVED_BYTES + capacityBytes) / WASM_PAGE) + 1;
    if (pages > 65536)
      throw new RangeError(`lockstep needs ${pages * WASM_PAGE} bytes of shared memory; WebAssembly allows 4 GiB`);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  }

  /** Bytes a list of buffers needs once aligned: what to pass as capacityBytes. */
  static bytesFor(sizesInBytes: readonly number[]): number {
    return sizesInBytes.reduce((sum, n) => sum + alignUp(n), 0);
  }

  get buffer(): SharedArrayBuffer {
    return this.memory.buffer as unknown as SharedArrayBuffer;
  }

  private take(bytes: number): number {
    const offset = this.next;
    this.next = offset + alignUp(bytes);
    if (this.next > this.memory.buffer.byteLength) throw new RangeError('SharedArena: plan too small for allocations');
    return offset;
  }

  f32(length: number): Float32Array {
    return new Float32Array(this.buffer, this.take(length * 4), length);
  }
  f64(length: number): Float64Array {
    return new Float64Array(this.buffer, this.take(length * 8), length);
  }
  u32(length: number): Uint32Array {
    return new Uint32Array(this.buffer, this.take(length * 4), length);
  }
  i32(length: number): Int32Array {
    return new Int32Array(this.buffer, this.take(length * 4), length);
  }
  u8(length: number): Uint8Array {
    return new Uint8Array(this.buffer, this.take(length), length);
  }
}

export function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
