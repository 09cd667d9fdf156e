/** JSON with sorted keys: the same settings give the same text, whatever order the flags came in. */
export function stableJson(o: object): string {
  return JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))));
}
