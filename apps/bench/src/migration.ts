import type { BenchGroup } from "./harness.ts";

/** Migration benchmarks (stream throughput, downtime); filled by the migration work. */
export const migration: BenchGroup = {
  name: "migration",
  run: () => [],
};
