/**
 * Errors of the migration stream and the VMState engine. Every message carries the numbers
 * that made it fail (offsets, counts, versions), as QEMU's do.
 *
 * @module
 */

/** A migration stream or device state could not be written or read. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

/** The stream ended before `needed` bytes could be read at `offset`. */
export class ShortReadError extends MigrationError {
  override name = "ShortReadError";
  readonly offset: number;
  readonly needed: number;
  readonly left: number;

  constructor(offset: number, needed: number, left: number, what?: string) {
    super(
      `${what === undefined ? "" : `${what}: `}short read at offset ${offset} ` +
        `(needed ${needed} bytes, ${left} left)`,
    );
    this.offset = offset;
    this.needed = needed;
    this.left = left;
  }
}

/**
 * A description failed to load or save. `vmsd` is the description's name (for a subsection
 * its full name, `serial/thr`), `field` the path of the field inside it (`recv_fifo/data[3]`),
 * `detail` what went wrong. The message reads `vmstate: serial/fifo: <detail>`.
 */
export class VMStateError extends MigrationError {
  override name = "VMStateError";
  readonly vmsd: string;
  readonly field: string | undefined;
  readonly detail: string;

  constructor(vmsd: string, field: string | undefined, detail: string, options?: ErrorOptions) {
    super(`vmstate: ${vmsd}${field === undefined ? "" : `/${field}`}: ${detail}`, options);
    this.vmsd = vmsd;
    this.field = field;
    this.detail = detail;
  }
}
