/**
 * `vm-cli`: FerryVM's command line, with QEMU's flag spellings.
 *
 * ```ts
 * import { main } from "@ferryvm/cli";
 * const status = await main(["run", "-M", "virt", "-bios", "none", "-kernel", "prog.elf", "-nographic"]);
 * ```
 *
 * @module
 */

export * from "./args.ts";
export * from "./console.ts";
export * from "./main.ts";
