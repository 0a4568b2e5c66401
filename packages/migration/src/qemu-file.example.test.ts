import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

it("the example in mod.ts runs and ends with what its comments say", async () => {
  const mod = readFileSync(new URL("./mod.ts", import.meta.url), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(mod)![1]!.replace(/^ \* ?/gm, "");
  const dir = mkdtempSync(join(tmpdir(), "migration-example-"));
  const file = join(dir, "example.ts");
  const vmstate = fileURLToPath(new URL("../../vmstate/src/mod.ts", import.meta.url));
  writeFileSync(
    file,
    `${code
      .replace('"@ferryvm/migration"', JSON.stringify(fileURLToPath(new URL("./mod.ts", import.meta.url))))
      .replace('"@ferryvm/vmstate"', JSON.stringify(vmstate))}\nexport { idstr, dev };\n`,
  );
  try {
    const result = (await import(/* @vite-ignore */ file)) as { idstr: string; dev: { n: number } };
    expect(result.idstr).toBe("dev");
    expect(result.dev.n).toBe(42);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
