/**
 * QEMU's `-dump-vmstate` JSON (migration/savevm.c, dump_vmstate_json_to_file), so QEMU's
 * scripts/vmstate-static-checker.py can compare our descriptions with QEMU's:
 *
 *   qemu-system-riscv64 -M virt -dump-vmstate qemu.json
 *   python3 scripts/vmstate-static-checker.py -s qemu.json -d ours.json
 *
 * QEMU prints each field's C `size`; we print the wire size of one element, the buffer's
 * fixed size, or 0 where it is a host struct size (structs, WITH_TMP: the checker does not
 * compare those) or not fixed (VBUFFER, bitmap, a buffer sized by its local array).
 *
 * @module
 */

import type { AnyVMStateDescription, VMStateDescription, VMStateField } from "./description.ts";

function pad(indent: number): string {
  return " ".repeat(indent);
}

function fieldSize(field: VMStateField<never>): number {
  const layout = field.layout;
  switch (layout.kind) {
    case "single":
    case "array":
      return layout.info.size;
    case "buffer":
      if ("fixed" in layout.size) return layout.size.fixed;
      if ("key" in layout.size && layout.size.multiply !== 1) return layout.size.multiply;
      return 0;
    case "unused":
      return layout.size;
    default:
      return 0;
  }
}

function dumpField(field: VMStateField<never>, indent: number): string {
  let s = `${pad(indent)}{\n`;
  indent += 2;
  s += `${pad(indent)}"field": "${field.name}",\n`;
  s += `${pad(indent)}"version_id": ${field.version_id},\n`;
  s += `${pad(indent)}"field_exists": ${field.field_exists !== undefined},\n`;
  s += `${pad(indent)}"size": ${fieldSize(field)}`;
  const layout = field.layout;
  if (layout.kind === "struct" || layout.kind === "tmp") s += `,\n${dumpVmsd(layout.vmsd, indent, false)}`;
  return `${s}\n${pad(indent - 2)}}`;
}

function dumpVmsd(vmsd: AnyVMStateDescription, indent: number, isSubsection: boolean): string {
  let s = isSubsection ? `${pad(indent)}{\n` : `${pad(indent)}"Description": {\n`;
  indent += 2;
  s += `${pad(indent)}"name": "${vmsd.name}",\n`;
  s += `${pad(indent)}"version_id": ${vmsd.version_id},\n`;
  s += `${pad(indent)}"minimum_version_id": ${vmsd.minimum_version_id}`;
  const fields = vmsd.fields.filter((f) => f.layout.kind !== "validate");
  s += `,\n${pad(indent)}"Fields": [\n`;
  s += fields.map((f) => dumpField(f, indent + 2)).join(",\n");
  s += `\n${pad(indent)}]`;
  if (vmsd.subsections !== undefined) {
    s += `,\n${pad(indent)}"Subsections": [\n`;
    s += vmsd.subsections.map((sub) => dumpVmsd(sub, indent + 2, true)).join(",\n");
    s += `\n${pad(indent)}]`;
  }
  return `${s}\n${pad(indent - 2)}}`;
}

/**
 * The `-dump-vmstate` text for `devices`, keyed by QOM type name (`"riscv.sifive.plic"`),
 * for machine type `machine` (`"virt"`).
 */
export function vmstateDumpJson(
  devices: Record<string, VMStateDescription<never>>,
  options: { machine: string },
): string {
  let s = `{\n  "vmschkmachine": {\n    "Name": "${options.machine}"\n  },\n`;
  s += Object.entries(devices).map(([type, vmsd]) =>
    `  "${type}": {\n    "Name": "${type}",\n    "version_id": ${vmsd.version_id},\n` +
    `    "minimum_version_id": ${vmsd.minimum_version_id},\n${dumpVmsd(vmsd, 4, false)}\n  }`
  ).join(",\n");
  return `${s}\n}\n`;
}
