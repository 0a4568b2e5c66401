/**
 * `vm-cli compat-check`: QEMU's `scripts/vmstate-static-checker.py` for FerryVM. Checks
 * that DEST can load what SRC sends, from the vmdescs that end migration streams.
 *
 * ```sh
 * vm-cli compat-check -s golden/virt-1.0/stream.bin.gz -d now.vmdesc.json [--same-state] [--json]
 * ```
 *
 * SRC and DEST are each a vmdesc JSON file or a stream file (raw or gzip), whose vmdesc is
 * taken from its end. The rules are `checkVmdescCompat`'s (@ferryvm/migration).
 *
 * Exit status: 0 compatible (warnings allowed), 1 incompatible (at least one error), 2 usage
 * or input error. QEMU's script exits with its error count (capped at 255) and never fails
 * on a warning; a count is not a status a caller can branch on beyond zero, and argparse
 * already uses 2 for usage, so we keep 0/1/2.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { checkVmdescCompat, findVmdesc, parseVmdescJson, type CompatIssue, type Vmdesc } from "@ferryvm/migration";
import { subcommandArgs, UsageError } from "./args.ts";

export const COMPAT_CHECK_USAGE = `usage: vm-cli compat-check -s SRC -d DEST [--same-state] [--reverse] [--json]

Checks whether a VM migrated from SRC can be loaded by DEST, from their vmdescs, with the rules
of QEMU's vmstate-static-checker.py. SRC and DEST are vmdesc JSON files or migration streams
(raw or .gz; the vmdesc at the stream's end is used).

  -s, --src FILE   what the sender writes
  -d, --dest FILE  what the receiver writes for the same machine type
  --same-state     both describe the same guest state: a subsection SRC sent and DEST did not
                   is an error, not a warning
  --reverse        swap SRC and DEST (check the other direction)
  --json           print {compatible, errors, warnings} as JSON on stdout

Exit status: 0 compatible (warnings allowed), 1 incompatible, 2 usage or unreadable input.
`;

export interface CompatCheckArgs {
  src: string;
  dest: string;
  sameState: boolean;
  reverse: boolean;
  json: boolean;
}

export interface CompatCheckIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function processIo(): CompatCheckIo {
  return { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };
}

/** Parses `vm-cli compat-check`'s arguments; undefined = --help. Throws UsageError. */
export function parseCompatCheckArgs(argv: readonly string[]): CompatCheckArgs | undefined {
  let src: string | undefined;
  let dest: string | undefined;
  const args = { sameState: false, reverse: false, json: false };
  for (const { name: a, value: next } of subcommandArgs(argv, (a) => `compat-check: ${a} needs a file`)) {
    switch (a) {
      case "-h": case "--help": case "-help": return undefined;
      case "-s": case "--src": src = next(); break;
      case "-d": case "--dest": dest = next(); break;
      case "--same-state": args.sameState = true; break;
      case "--reverse": args.reverse = true; break;
      case "--json": args.json = true; break;
      default:
        throw new UsageError(a.startsWith("-") ? `compat-check: unknown option ${a}` : `compat-check: unexpected argument '${a}' (use -s SRC -d DEST)`);
    }
  }
  if (src === undefined || dest === undefined) throw new UsageError("compat-check: both -s SRC and -d DEST are required");
  return { src, dest, ...args };
}

/** A vmdesc from a JSON file or from the end of a (gzipped) stream file. Throws UsageError. */
export function readVmdescFile(path: string): Vmdesc {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const reason = e instanceof Error && "code" in e ? String((e as NodeJS.ErrnoException).code) : String(e);
    throw new UsageError(`compat-check: cannot read '${path}': ${reason}`);
  }
  try {
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
    let k = 0;
    while (k < bytes.length && (bytes[k] === 0x20 || bytes[k] === 0x0a || bytes[k] === 0x0d || bytes[k] === 0x09)) k++;
    const text = bytes[k] === 0x7b ? new TextDecoder().decode(bytes) : findVmdesc(bytes);
    return parseVmdescJson(text);
  } catch (e) {
    throw new UsageError(`compat-check: '${path}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** One issue as a line: QEMU's sentence, then the code and path. */
export function formatIssue(issue: CompatIssue): string {
  return `${issue.severity}: ${issue.message} [${issue.code}${issue.path === "" ? "" : ` ${issue.path}`}]`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `vm-cli compat-check ARGS`: the exit status (0 compatible, 1 errors, 2 usage). */
export async function compatCheckCommand(argv: readonly string[], io: CompatCheckIo = processIo()): Promise<number> {
  let args: CompatCheckArgs | undefined;
  let src: Vmdesc;
  let dest: Vmdesc;
  try {
    args = parseCompatCheckArgs(argv);
    if (args === undefined) {
      io.stdout(COMPAT_CHECK_USAGE);
      return 0;
    }
    src = readVmdescFile(args.src);
    dest = readVmdescFile(args.dest);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr(`vm-cli: ${e.message}\n`);
    if (args === undefined) io.stderr("usage: vm-cli compat-check -s SRC -d DEST [--same-state] [--reverse] [--json]\n");
    return 2;
  }
  const [srcName, destName] = args.reverse ? [args.dest, args.src] : [args.src, args.dest];
  if (args.reverse) [src, dest] = [dest, src];
  const { errors, warnings } = checkVmdescCompat(src, dest, { sameState: args.sameState });
  const compatible = errors.length === 0;
  if (args.json) {
    io.stdout(JSON.stringify({ src: srcName, dest: destName, compatible, errors, warnings }) + "\n");
  } else {
    for (const issue of [...errors, ...warnings]) io.stdout(formatIssue(issue) + "\n");
    io.stdout(`${srcName} -> ${destName}: ${compatible ? "compatible" : "incompatible"} (${plural(errors.length, "error")}, ${plural(warnings.length, "warning")})\n`);
  }
  return compatible ? 0 : 1;
}
