import { UserError } from '../errors.js';
import { createJsKernels, type KernelName, type Kernels } from './kernels.js';
import { createNativeKernels, NATIVE_ISAS, nativeStatus, type NativeIsa, type NativeStatus } from './native.js';
import { createWasmKernels, wasmSimdSupported } from './wasm.js';

export type { KernelName };

/** What --kernels takes: a kernel set, or `native` for the widest native set this CPU runs. */
export const KERNEL_CHOICES = ['native', 'avx512', 'avx2', 'wasm', 'js'] as const;
export type KernelChoice = (typeof KERNEL_CHOICES)[number];

const isNative = (name: string): name is NativeIsa => (NATIVE_ISAS as readonly string[]).includes(name);

/** The kernel set by name; all but js run on the given shared memory (views passed to it must lie there). */
export function createKernels(name: KernelName, memory: WebAssembly.Memory): Kernels {
  if (isNative(name)) return createNativeKernels(memory, name);
  return name === 'wasm' ? createWasmKernels(memory) : createJsKernels();
}

/** The default: the widest native set the CPU runs, else wasm where the runtime has WebAssembly SIMD, else js. */
export function defaultKernels(): KernelName {
  return resolveKernels(undefined);
}

/**
 * The kernel set a --kernels choice means on this machine; one the machine lacks is refused in the flag's
 * words. `native` is what this process can load (a parameter so a test can be another machine).
 */
export function resolveKernels(choice: KernelChoice | undefined, native: NativeStatus = nativeStatus()): KernelName {
  if (choice === undefined) return native.isas[0] ?? (wasmSimdSupported() ? 'wasm' : 'js');
  if (!(KERNEL_CHOICES as readonly string[]).includes(choice)) {
    throw new UserError(`--kernels ${String(choice)}: must be one of ${KERNEL_CHOICES.join(', ')}`);
  }
  if (choice === 'js') return choice;
  if (choice === 'wasm') {
    if (!wasmSimdSupported())
      throw new UserError('--kernels wasm: this runtime has no WebAssembly SIMD; use --kernels js');
    return choice;
  }
  const { isas, missing } = native;
  if (missing !== undefined)
    throw new UserError(`--kernels ${choice}: native kernels not built (${missing}); use --kernels wasm`);
  if (choice === 'native') {
    if (isas.length === 0)
      throw new UserError(`--kernels native: this CPU has none of ${NATIVE_ISAS.join(', ')}; use --kernels wasm`);
    return isas[0];
  }
  if (!isas.includes(choice)) {
    const instead = isas.length > 0 ? `--kernels ${isas[0]} (what native picks here) or wasm` : '--kernels wasm';
    throw new UserError(
      `--kernels ${choice}: this CPU does not have ${choice === 'avx512' ? 'AVX-512F' : 'AVX2'}; use ${instead}`,
    );
  }
  return choice;
}

/** The one-line notice when native kernels are missing (not built) and the default falls back; null otherwise. */
export function nativeMissingNotice(): string | null {
  const { missing } = nativeStatus();
  return missing === undefined
    ? null
    : `native kernels not built (${missing}); using ${wasmSimdSupported() ? 'wasm' : 'js'}`;
}
