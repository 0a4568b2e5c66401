/**
 * Deterministic XBZRLE page pairs for the QEMU reference test: case `n` gives an old page, a
 * new page made from it by one of several change patterns, and an output limit. The fixture
 * testdata/xbzrle-qemu.json holds, per case, what QEMU 7.2's xbzrle_encode_buffer returned
 * for the same inputs (compiled standalone outside the repository): the length (or -1) and
 * the XXH64 of the encoded bytes.
 */
import { rng } from "./kernel-bench.ts";

export const XBZRLE_CASES = 600;

export function xbzrleCase(n: number): { old: Uint8Array; cur: Uint8Array; dlen: number } {
  const next = rng(0x9e3779b9 ^ (n * 2654435761));
  const old = new Uint8Array(4096);
  for (let i = 0; i < 4096; i++) old[i] = next() & 0xff;
  const cur = old.slice();
  switch (n % 6) {
    case 0: {
      const pct = [0.1, 1, 5, 10, 30, 50, 90][n % 7]!;
      for (let i = 0; i < 4096; i++) if (next() % 1000 < pct * 10) cur[i] = cur[i]! ^ (1 + (next() % 255));
      break;
    }
    case 1: {
      const runs = 1 + (next() % 40);
      for (let r = 0; r < runs; r++) {
        const at = next() % 4096;
        const len = 1 + (next() % 200);
        for (let i = at; i < Math.min(4096, at + len); i++) cur[i] = cur[i]! ^ (1 + (next() % 255));
      }
      break;
    }
    case 2:
      for (let i = 0; i < 4096; i++) if (next() % 3 === 0) cur[i] = cur[i]! ^ (1 + (next() % 255));
      break;
    case 3:
      for (let r = next() % 8; r > 0; r--) cur[next() % 4096] ^= 0x10;
      break;
    case 4:
      for (let i = 0; i < 4096; i += 1 + (next() % 9)) cur[i] = cur[i]! ^ 0xff;
      break;
    default:
      for (let s = 0; s < 64; s++) if (next() % 4 === 0) for (let i = s * 64; i < s * 64 + 64; i++) cur[i] = cur[i]! ^ (1 + (next() % 255));
  }
  const dlen = [4096, 4096, 100, 1000, 3000, 8192][Math.floor(n / 6) % 6]!;
  return { old, cur, dlen };
}
