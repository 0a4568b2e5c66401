import type { BenchGroup } from "./harness.ts";
import { cpu } from "./cpu.ts";
import { memory } from "./memory.ts";
import { migration } from "./migration.ts";

/** Every bench group, in the order `pnpm bench` runs them. Add a group here. */
export const groups: readonly BenchGroup[] = [cpu, memory, migration];
