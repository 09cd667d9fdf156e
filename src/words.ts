/** "1 step", "2 steps": every count in lockstep's messages. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A short description of a value for an error message: its type, and the value itself when it is short. */
export function describe(value: unknown): string {
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (Array.isArray(value))
    return value.length <= 8
      ? `[${value.map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v))).join(', ')}]`
      : `an array of ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return `an object with keys ${Object.keys(value).slice(0, 6).join(', ') || '(none)'}`;
  return `${typeof value} ${String(value)}`;
}

/** Four significant digits, without a float32 value's tail (0.0010000000474974513 → 0.001): a rate, a statistic. */
export function fourDigits(v: number): string {
  return String(Number(v.toPrecision(4)));
}
