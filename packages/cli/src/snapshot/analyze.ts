/**
 * `vm-cli analyze FILE [--dump state|desc] [--memory]`: a migration stream as the JSON of
 * QEMU's scripts/analyze-migration.py (`-f FILE [-d desc] [-m]`), for our streams and QEMU's.
 *
 * @module
 */

import { analyzeMigration, formatAnalysis, MigrationError } from "@ferryvm/migration";
import { UsageError } from "../args.ts";
import { strerror } from "./channel.ts";

export const ANALYZE_USAGE = `usage: vm-cli analyze FILE [--dump state|desc] [--memory] [--configuration]

Prints a migration stream (ours or QEMU's) as QEMU's scripts/analyze-migration.py does.
  FILE, -f FILE         the stream
  -d, --dump state|desc state: the sections and their fields (default); desc: the vmdesc
  -m, --memory          include RAM page contents
  --configuration       also show the configuration section (machine type, capabilities)
`;

export interface AnalyzeArgs {
  file: string;
  dumpDesc: boolean;
  memory: boolean;
  configuration: boolean;
}

/** Parses `analyze` arguments; undefined for `--help`. */
export function parseAnalyzeArgs(argv: readonly string[]): AnalyzeArgs | undefined {
  let file: string | undefined;
  let dumpDesc = false;
  let memory = false;
  let configuration = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const eq = a.indexOf("=");
      if (a.startsWith("--") && eq > 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw new UsageError(`analyze: ${a} requires an argument`);
      return argv[++i]!;
    };
    const name = a.startsWith("--") && a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    if (name === "-h" || name === "--help" || name === "-help") return undefined;
    if (name === "-m" || name === "--memory") memory = true;
    else if (name === "--configuration") configuration = true;
    else if (name === "-d" || name === "--dump") {
      const v = value();
      if (v !== "state" && v !== "desc") throw new UsageError(`analyze: ${name}: invalid choice '${v}' (choose from 'state', 'desc')`);
      dumpDesc = v === "desc";
    } else if (name === "-f" || name === "--file") {
      if (file !== undefined) throw new UsageError("analyze: more than one file given");
      file = value();
    } else if (a.startsWith("-") && a !== "-") {
      throw new UsageError(`analyze: ${a}: unknown option (see vm-cli analyze --help)`);
    } else {
      if (file !== undefined) throw new UsageError("analyze: more than one file given");
      file = a;
    }
  }
  if (file === undefined) throw new UsageError("analyze: no stream file given (vm-cli analyze FILE)");
  return { file, dumpDesc, memory, configuration };
}

/** Runs `analyze`; returns the text to print (with its final newline). */
export function analyzeFile(args: AnalyzeArgs, readFile: (path: string) => Uint8Array): string {
  let bytes: Uint8Array;
  try {
    bytes = readFile(args.file);
  } catch (e) {
    throw new UsageError(`analyze: could not read '${args.file}': ${strerror(e)}`);
  }
  try {
    const json = analyzeMigration(bytes, { dumpDesc: args.dumpDesc, memory: args.memory, configuration: args.configuration });
    return formatAnalysis(json) + "\n";
  } catch (e) {
    if (e instanceof MigrationError) throw new UsageError(`analyze: ${args.file}: ${e.message}`);
    throw e;
  }
}
