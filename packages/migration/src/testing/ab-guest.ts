/**
 * The a-b workload guest (guests/migration/a-b.elf) for the live migration tests: it prints
 * A, then B after every pass rewriting [RAM + 1 MiB, + span), and E if it ever finds a byte
 * it did not write — a migration that lost or mixed up a page.
 * Tests only (src/testing is not built).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { createMachine, type Machine } from "@ferryvm/devices";
import { InThreadMachineVm } from "./machine-vm.ts";

const KERNEL = new Uint8Array(readFileSync(new URL("../../../../guests/migration/a-b.elf", import.meta.url)));
const MIG_START = 0x80100000n;
/** a-b's mig_end word. */
const MIG_END_ADDR = 0x80004020;

export interface AbGuest {
  machine: Machine;
  vm: InThreadMachineVm;
  /** Everything the guest printed so far. */
  out(): string;
}

export interface AbGuestOptions {
  /** Bytes a-b rewrites from RAM + 1 MiB (default 8 MiB). */
  span?: number;
  ramSize?: number;
  uuid?: Uint8Array;
  vcpuThread?: "main" | "worker";
  /** InThreadMachineVm's slice: how long each machine run lasts. */
  sliceMs?: number;
}

/** A machine with a-b loaded (32 MiB of RAM unless told); not started. */
export async function abGuest(options: AbGuestOptions = {}): Promise<AbGuest> {
  let text = "";
  const machine = await createMachine({
    ramSize: options.ramSize ?? 32 << 20,
    kernel: KERNEL,
    ...(options.vcpuThread !== undefined ? { vcpuThread: options.vcpuThread } : {}),
    onConsoleOutput: (b) => {
      text += new TextDecoder().decode(b);
    },
  });
  const end = new Uint8Array(8);
  new DataView(end.buffer).setBigUint64(0, MIG_START + BigInt(options.span ?? 8 << 20), true);
  machine.guestMemory.write(MIG_END_ADDR, end);
  const vm = new InThreadMachineVm(machine, { uuid: options.uuid, sliceMs: options.sliceMs });
  return { machine, vm, out: () => text };
}

/** Polls `cond` every 5 ms; throws after `ms`. */
export async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** How often `c` occurs in `s`. */
export function count(s: string, c: string): number {
  return s.split(c).length - 1;
}

/** Starts the guest and waits for its first pass ("AB"). */
export async function runningAbGuest(options: AbGuestOptions = {}): Promise<AbGuest> {
  const g = await abGuest(options);
  await g.vm.resume();
  await waitFor(() => g.out().includes("AB"));
  return g;
}

/** The guest keeps printing B, never E, and its VM is running; throws otherwise. */
export async function keepsRunning(g: AbGuest): Promise<void> {
  const before = count(g.out(), "B");
  await waitFor(() => count(g.out(), "B") > before + 2);
  if (g.out().includes("E")) throw new Error(`the a-b guest printed E: ${JSON.stringify(g.out().slice(-80))}`);
  if (g.vm.runState !== "running") throw new Error(`the VM is ${g.vm.runState}, not running`);
}

/** The hash of every RAM block, in order. */
export function ramHashes(g: AbGuest): bigint[] {
  const m = g.vm.memory;
  return m.ramBlocks.map((b) => m.hashBlock(b));
}
