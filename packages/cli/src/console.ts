/**
 * The console on the host's stdio. On a terminal with QEMU's `mon:stdio` multiplexer
 * (chardev/char-mux.c) Ctrl-A is a prefix: `C-a x` quits, `C-a h` prints help, `C-a C-a`
 * sends a Ctrl-A; everything else goes to the guest. Without the multiplexer a terminal's
 * Ctrl-C quits (QEMU's stdio `signal=on`). Piped or file input is forwarded as it comes.
 *
 * @module
 */

export const ESCAPE_CHAR = 0x01;
const CTRL_C = 0x03;

export type ConsoleAction = "quit" | "help" | "break" | "monitor" | "timestamps" | "commit";

export const MUX_HELP =
  "\nC-a h    print this help\n" +
  "C-a x    exit emulator\n" +
  "C-a s    save disk data back to file (if -snapshot)\n" +
  "C-a t    toggle console timestamps\n" +
  "C-a b    send break (magic sysrq)\n" +
  "C-a c    switch between console and monitor\n" +
  "C-a C-a  sends C-a\n";

/** Splits terminal input into guest bytes and console actions. */
export class ConsoleEscape {
  #mux: boolean;
  #gotEscape = false;

  /** `mux`: QEMU's mon:stdio (Ctrl-A prefix); otherwise Ctrl-C quits. */
  constructor(mux: boolean) {
    this.#mux = mux;
  }

  process(bytes: Uint8Array): { forward: Uint8Array; actions: ConsoleAction[] } {
    const forward: number[] = [];
    const actions: ConsoleAction[] = [];
    for (const ch of bytes) {
      if (!this.#mux) {
        if (ch === CTRL_C) actions.push("quit");
        else forward.push(ch);
        continue;
      }
      if (this.#gotEscape) {
        this.#gotEscape = false;
        if (ch === ESCAPE_CHAR) forward.push(ch);
        else if (ch === 0x78) actions.push("quit");
        else if (ch === 0x68 || ch === 0x3f) actions.push("help");
        else if (ch === 0x62) actions.push("break");
        else if (ch === 0x63) actions.push("monitor");
        else if (ch === 0x74) actions.push("timestamps");
        else if (ch === 0x73) actions.push("commit");
      } else if (ch === ESCAPE_CHAR) {
        this.#gotEscape = true;
      } else {
        forward.push(ch);
      }
    }
    return { forward: Uint8Array.from(forward), actions };
  }
}
