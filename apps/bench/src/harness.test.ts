import { describe, expect, it } from "vitest";
import { formatTable, measure, median } from "./harness.ts";
import { groups } from "./groups.ts";

describe("bench harness", () => {
  it("takes the median of odd and even sample counts", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("measures the time of one call, not of the whole calibrated run", () => {
    let calls = 0;
    const seconds = measure(
      () => {
        const until = process.hrtime.bigint() + 200_000n; // 0.2 ms of busy work
        while (process.hrtime.bigint() < until) calls++;
      },
      { runs: 3, minSeconds: 0.005 },
    );
    expect(seconds).toBeGreaterThanOrEqual(0.0002);
    expect(seconds).toBeLessThan(0.002);
    expect(calls).toBeGreaterThan(0);
  });

  it("prints one aligned row per figure with its baselines", () => {
    const table = formatTable([
      { name: "zero-page scan", unit: "GB/s", value: 10.5, baselines: { scalar: 8, "read-bandwidth": 10 } },
      { name: "bitmap scan", unit: "µs/scan", value: 1234.5, baselines: {} },
    ]);
    const lines = table.split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[2]).toContain("scalar 8.00, read-bandwidth 10.00");
    expect(lines[3]).toMatch(/^bitmap scan\s+1235\s+µs\/scan$/);
  });

  it("registers the cpu, memory and migration groups", () => {
    expect(groups.map((g) => g.name)).toEqual(["cpu", "memory", "migration"]);
  });
});
