import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package, by require: Node's `import` of one first scans its source, and every file it re-exports,
 * for their export names (bullmq's whole tree: ~100 ms of every queue command's start); require skips that.
 */
export function requirePackage<T>(name: string): T {
  return require(name) as T;
}

/**
 * A CommonJS package loaded on its first use rather than at start: for packages that take tens of
 * milliseconds to load and that most commands never touch (every `lockstep train` process pays its imports).
 */
export function lazyPackage<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requirePackage<T>(name));
}
