/** The benchmark scripts' own flags: `--name value` on their command line. */

/** The value after --name, or `fallback`. */
export function flag(name: string, fallback: string): string;
export function flag(name: string): string | undefined;
export function flag(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** The positive integer after --name, or `fallback`; anything else stops the script with the flag named. */
export function countFlag(script: string, name: string, fallback: number): number {
  const text = flag(name);
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${script}: --${name} ${text}: must be a positive integer`);
  return value;
}
