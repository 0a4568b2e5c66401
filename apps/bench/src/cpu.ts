import type { BenchGroup } from "./harness.ts";

/** CPU benchmarks (MIPS of the interpreter); filled by the CPU work. */
export const cpu: BenchGroup = {
  name: "cpu",
  run: () => [],
};
