/** "1 step", "2 steps": every count in lockstep's messages. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
