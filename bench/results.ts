/**
 * The benchmark's machine-readable side (issue 12): one-line figures such as `ratio vnc deskrec/x11grab 0.48`
 * or `idle vnc cpu_s_per_min 0.015`, printed by each section (so a section run alone prints them too), and
 * the JSON file bench/run.ts writes with every section's measured rows (bench/results/latest.json).
 *
 * A figure line is `NAME VALUE`: NAME is words, VALUE the last space-separated token and a plain number (no
 * unit, no "x"), so `grep '^ratio '` and `awk '{print $NF}'` read them. A figure whose inputs were not all
 * measured in this run is not printed; one `no NAME[, NAME…]: why` line says why instead.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** One measured figure: printed as `name value.toFixed(digits)`. */
export interface Figure {
  name: string;
  value: number;
  digits: number;
}

/** Figures that were not measured in this run, for one reason. */
export interface Missing {
  names: string[];
  why: string;
}

/** What a section measured as figures, and what it could not. */
export interface Figures {
  figures: Figure[];
  missing: Missing[];
}

/** A figure as printed. */
export function figureLine(f: Figure): string {
  return `${f.name} ${f.value.toFixed(f.digits)}`;
}

/** A section's figures, built up as it measures; `print` writes the lines. */
export class FigureList implements Figures {
  readonly figures: Figure[] = [];
  readonly missing: Missing[] = [];

  /** `value`, or, when it is undefined or not finite (NaN: not measured), a `no NAME: why` line. */
  add(name: string, value: number | undefined, digits: number, why = 'not measured'): this {
    if (value === undefined || !Number.isFinite(value)) this.missing.push({ names: [name], why });
    else this.figures.push({ name, value, digits });
    return this;
  }

  /** `num / den` when both sides were measured in this run; otherwise one line saying why (`why`). */
  ratio(name: string, num: number | undefined, den: number | undefined, why: string, digits = 2): this {
    if (num === undefined || den === undefined) return this.none([name], why);
    // A zero denominator (a peer that spent nothing) gives no ratio worth comparing between runs.
    return this.add(name, num / den, digits, den === 0 ? 'its denominator is 0' : 'not measured');
  }

  /** Several figures not measured for one reason (e.g. the recorder did not run): one line. */
  none(names: string[], why: string): this {
    if (names.length > 0) this.missing.push({ names, why });
    return this;
  }

  /** Prints the figure lines, then one line per reason something was not measured, after a blank line. */
  print(): void {
    if (this.figures.length === 0 && this.missing.length === 0) return;
    console.log('');
    for (const f of this.figures) console.log(figureLine(f));
    for (const m of this.missing) console.log(`no ${m.names.join(', ')}: ${m.why}`);
  }
}

/** Several lists as one (a section measured in parts, each printing its own lines). */
export function mergeFigures(...lists: Figures[]): Figures {
  return { figures: lists.flatMap((l) => l.figures), missing: lists.flatMap((l) => l.missing) };
}

/** The figures of every section of one run, by name (the value rounded as printed), and what was not measured. */
export interface CollectedFigures {
  ratios: Record<string, number>;
  notMeasured: Record<string, string>;
}

/** Adds one section's figures to the run's. */
export function collectFigures(into: CollectedFigures, f: Figures): void {
  for (const x of f.figures) into.ratios[x.name] = Number(x.value.toFixed(x.digits));
  for (const m of f.missing) for (const n of m.names) into.notMeasured[n] = m.why;
}

/** Where bench/run.ts writes its JSON: BENCH_JSON, or bench/results/latest.json in the checkout (not committed). */
export function resultsPath(): string {
  // From dist-ts/bench/ the checkout is two levels up.
  return process.env.BENCH_JSON ?? path.resolve(__dirname, '..', '..', 'bench', 'results', 'latest.json');
}

/**
 * Writes `value` as indented JSON to `file` (its directory made). JSON has no NaN or Infinity: NaN (not
 * measured) becomes null, ±Infinity (e.g. the PSNR of identical pictures) the string "Infinity"/"-Infinity".
 */
export function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const replacer = (_key: string, v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? null : String(v)) : v);
  writeFileSync(file, `${JSON.stringify(value, replacer, 2)}\n`);
}
