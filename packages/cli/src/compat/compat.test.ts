import { describe, expect, it } from "vitest";
import { checkGolden, listGoldens } from "./goldens.ts";

const goldens = listGoldens();

describe("golden streams", () => {
  it("exist for every machine type (virt-1.0 at least)", () => {
    expect(goldens.map((g) => g.meta.machineType)).toContain("virt-1.0");
  });

  for (const g of goldens) {
    it(`${g.meta.machineType}: loads into this release, the guest runs on, and the vmdescs stay compatible both ways`, async () => {
      const c = await checkGolden(g);
      expect(c.console).toMatch(/B/);
      expect(c.console).not.toMatch(/E/);
      expect(c.forward.errors).toEqual([]);
      expect(c.backward.errors).toEqual([]);
    });
  }
});
