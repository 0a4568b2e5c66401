/**
 * `pnpm bench [group ...] [--json]`: runs the named bench groups (all when none is named)
 * and prints one table, or with `--json` only a JSON array of
 * `{ name, unit, value, baselines }` on stdout; progress always goes to stderr.
 */
import { setFlagsFromString } from "node:v8";
import { formatTable, type BenchContext, type BenchResult } from "./harness.ts";
import { groups } from "./groups.ts";

// Measure optimized code only: without this, V8 first runs WebAssembly from its baseline
// compiler (Liftoff) and a kernel called a few times on large buffers may be timed there.
// Groups must compile their modules in run(), after this line.
setFlagsFromString("--no-liftoff");

interface Options {
  json: boolean;
  names: string[];
}

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { json: false, names: [] };
  for (const arg of argv) {
    if (arg === "--json") options.json = true;
    else if (arg === "--") continue;
    else if (arg === "-h" || arg === "--help") {
      process.stdout.write(
        `usage: pnpm bench [group ...] [--json]\ngroups: ${groups.map((g) => g.name).join(", ")} (none = all)\n`,
      );
      process.exit(0);
    } else if (arg.startsWith("-")) throw new Error(`unknown option ${arg}`);
    else options.names.push(arg);
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  for (const name of options.names) {
    if (!groups.some((g) => g.name === name)) {
      throw new Error(`unknown bench group "${name}"; groups: ${groups.map((g) => g.name).join(", ")}`);
    }
  }
  const selected = options.names.length === 0 ? groups : groups.filter((g) => options.names.includes(g.name));
  const context: BenchContext = { log: (message) => process.stderr.write(`${message}\n`) };
  const results: BenchResult[] = [];
  for (const group of selected) {
    context.log(`[bench] ${group.name} ...`);
    const groupResults = await group.run(context);
    if (groupResults.length === 0) context.log(`no ${group.name} benchmarks yet`);
    results.push(...groupResults);
  }
  if (options.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else if (results.length > 0) process.stdout.write(`${formatTable(results)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
