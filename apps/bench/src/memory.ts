import type { BenchGroup } from "./harness.ts";

/** Page kernels and dirty-bitmap scans of @ferryvm/memory. */
export const memory: BenchGroup = {
  name: "memory",
  run: () => [],
};
