/** Printing benchmark results as markdown tables (pasted as-is into notes and docs/BENCHMARKS.md). */

/** One row: column name → cell. */
export interface Row { [k: string]: string | number }

/** Prints `rows` under `title` as a markdown table with aligned columns. */
export function table(title: string, rows: Row[]): void {
  const first = rows[0];
  if (first === undefined) return;
  const cols = Object.keys(first);
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i] ?? 0)).join(' | ')} |`;
  console.log(`\n${title}\n`);
  console.log(line(cols));
  console.log(line(w.map((n) => '-'.repeat(n))));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}
