/**
 * Timing and reporting helpers shared by every bench group.
 *
 * A figure is the median of several timed runs after a warm-up, each run long enough
 * (`minSeconds`) that `process.hrtime.bigint()` resolution does not matter.
 */

/** One measured figure beside its baselines, measured in the same run. */
export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly baselines: Readonly<Record<string, number>>;
}

export interface BenchContext {
  /** Progress output; goes to stderr so `--json` keeps stdout clean. */
  log(message: string): void;
}

/** A named set of benchmarks; add one file per group and list it in groups.ts. */
export interface BenchGroup {
  readonly name: string;
  run(context: BenchContext): Promise<BenchResult[]> | BenchResult[];
}

export interface MeasureOptions {
  /** Timed runs; the median is returned. */
  runs?: number;
  /** Least wall time of one timed run, in seconds: the body is repeated until reached. */
  minSeconds?: number;
}

/**
 * Median wall time in seconds of one call of `body`. `body` runs once to warm up, then
 * repeated `iterations` times per timed run, where `iterations` is calibrated so a run
 * lasts at least `minSeconds`.
 */
export function measure(body: () => void, options: MeasureOptions = {}): number {
  const runs = options.runs ?? 5;
  const minSeconds = options.minSeconds ?? 0.02;
  body();
  let iterations = 1;
  for (;;) {
    const t = timeOnce(body, iterations);
    if (t >= minSeconds) break;
    iterations = Math.min(iterations * Math.max(2, Math.ceil(minSeconds / Math.max(t, 1e-7))), 1e9);
  }
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(timeOnce(body, iterations) / iterations);
  return median(samples);
}

function timeOnce(body: () => void, iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Bytes per second as GB/s (10^9). */
export function gbPerSecond(bytes: number, seconds: number): number {
  return bytes / seconds / 1e9;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/** The results as one aligned text table: figure, unit, then each baseline. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => [
    r.name,
    formatNumber(r.value),
    r.unit,
    Object.entries(r.baselines)
      .map(([name, value]) => `${name} ${formatNumber(value)}`)
      .join(", "),
  ]);
  const header = ["benchmark", "value", "unit", "baselines (same unit, same run)"];
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    row.map((cell, c) => (c === 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
