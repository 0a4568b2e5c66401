import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadVmFromFile, saveVmToFile } from "./node.ts";
import { createTinyMachine, populateTinyMachine, saveTinyMachine, TINY_MACHINE } from "./testing.ts";

describe("the file helpers", () => {
  it("save a machine to a file and load it back into another", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferry-savevm-"));
    try {
      const src = createTinyMachine({ ramPages: 8 });
      populateTinyMachine(src);
      const path = join(dir, "vm.mig");
      const { bytes, vmdesc } = await saveVmToFile({ registry: src.registry, config: { machineName: TINY_MACHINE } }, path);
      expect(readFileSync(path).length).toBe(bytes);
      expect(new Uint8Array(readFileSync(path))).toEqual(await saveTinyMachine(src));
      expect(JSON.parse(vmdesc).page_size).toBe(4096);

      const dst = createTinyMachine({ ramPages: 8 });
      await loadVmFromFile({ registry: dst.registry, config: { machineName: TINY_MACHINE } }, path);
      expect(dst.memory.block("riscv_virt_board.ram").bytes).toEqual(src.memory.block("riscv_virt_board.ram").bytes);
      expect(dst.serial).toEqual(src.serial);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fail to load a missing file with the file system's error", async () => {
    const m = createTinyMachine();
    await expect(loadVmFromFile({ registry: m.registry, config: { machineName: "virt" } }, "/nonexistent/x.mig")).rejects.toThrow(
      /ENOENT/,
    );
  });
});
