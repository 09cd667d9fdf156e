/** An option's flag: its library name in kebab-case (batchSize: --batch-size). */
export function flagOf(name: string): string {
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
