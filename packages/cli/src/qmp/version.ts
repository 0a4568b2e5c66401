/**
 * The version QMP and HMP report. Management tools (libvirt, qemu.qmp users, test harnesses)
 * gate features on `qemu.major/minor`, so we report the QEMU release whose QMP and migration
 * format we follow (7.2.0) and put FerryVM's own name and version in `package`, where QEMU
 * builds put their distribution's package version.
 *
 * @module
 */

export const QEMU_VERSION = { major: 7, minor: 2, micro: 0 } as const;
