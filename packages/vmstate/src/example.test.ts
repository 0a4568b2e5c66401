import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it, vi } from "vitest";

it("the example in mod.ts runs and prints what its comments say", async () => {
  const mod = readFileSync(new URL("./mod.ts", import.meta.url), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(mod)![1]!.replace(/^ \* ?/gm, "");
  const dir = mkdtempSync(join(tmpdir(), "vmstate-example-"));
  const file = join(dir, "example.ts");
  writeFileSync(file, code.replace('"@ferryvm/vmstate"', JSON.stringify(fileURLToPath(new URL("./mod.ts", import.meta.url)))));
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  try {
    await import(/* @vite-ignore */ file);
    expect(log).toHaveBeenCalledOnce();
    const [divider, json] = log.mock.calls[0]! as [number, string];
    expect(divider).toBe(12);
    expect(json.startsWith('{"vmsd_name": "uart", "version": 2, "fields": [{"name": "divider", "type": "uint16", "size": 2}, ')).toBe(true);
    expect(JSON.parse(json).fields).toHaveLength(3);
  } finally {
    log.mockRestore();
    rmSync(dir, { recursive: true });
  }
});
