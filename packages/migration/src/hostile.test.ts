import fc from "fast-check";
import { MigrationError, ShortReadError } from "@ferryvm/vmstate";
import { beforeAll, describe, expect, it } from "vitest";
import { analyzeMigration, findVmdesc, streamFieldMap } from "./analyze.ts";
import { fieldMutations, flipBits, loadUntrusted, truncations } from "./hostile.ts";
import {
  createTinyMachine,
  populateTinyMachine,
  saveTinyMachine,
  tinyStreamWithXbzrle,
  type TinyMachine,
} from "./testing.ts";

let stream: Uint8Array;
let xbzrleStream: Uint8Array;
let target: TinyMachine;
let xbzrleTarget: TinyMachine;

beforeAll(async () => {
  const src = createTinyMachine({ ramPages: 2 });
  populateTinyMachine(src);
  stream = await saveTinyMachine(src);
  xbzrleStream = (await tinyStreamWithXbzrle()).bytes;
  target = createTinyMachine({ ramPages: 2 });
  xbzrleTarget = createTinyMachine({ ramPages: 4 });
});

function patch(bytes: Uint8Array, at: number, values: number[]): Uint8Array {
  const out = bytes.slice();
  out.set(values, at);
  return out;
}

function indexOfText(bytes: Uint8Array, text: string, from = 0): number {
  return Buffer.from(bytes).indexOf(text, from);
}

async function loadError(bytes: Uint8Array, machine = target): Promise<MigrationError> {
  const r = await loadUntrusted(machine, bytes);
  if (r.ok) throw new Error("the load succeeded");
  return r.error;
}

describe("a hostile stream", () => {
  it("loads when intact (the base of every mutation)", async () => {
    expect(await loadUntrusted(target, stream)).toEqual({ ok: true });
    expect(await loadUntrusted(xbzrleTarget, xbzrleStream)).toEqual({ ok: true });
  });

  it("fails with a ShortReadError at every truncation, except right after EOF (no vmdesc is fine)", async () => {
    const vmdescLength = streamFieldMap(stream).find((f) => f.what === "vmdesc length")!;
    const afterEof = vmdescLength.offset - 1; // the 0x06 byte; EOF is the byte before it
    for (const m of truncations(stream)) {
      const r = await loadUntrusted(target, m.bytes, 4093);
      if (m.bytes.length === afterEof) {
        expect(r, m.name).toEqual({ ok: true });
      } else {
        expect(r.ok, m.name).toBe(false);
        if (!r.ok) expect(r.error, `${m.name}: ${r.error.message}`).toBeInstanceOf(ShortReadError);
      }
    }
  });

  it("fails cleanly, or loads, with every framing number set to 0, max, max signed and value ± 1", async () => {
    let failed = 0;
    let total = 0;
    for (const s of [stream, xbzrleStream]) {
      for (const m of fieldMutations(s)) {
        const r = await loadUntrusted(s === stream ? target : xbzrleTarget, m.bytes);
        total++;
        if (!r.ok) failed++;
      }
    }
    expect(total).toBeGreaterThan(300);
    expect(failed / total).toBeGreaterThan(0.8);
  });

  it("survives random bit flips", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(stream.length * 8 - 1), { minLength: 1, maxLength: 8 }), async (bits) => {
        await loadUntrusted(target, flipBits(stream, bits), 1000);
      }),
      { numRuns: 300 },
    );
  });

  it("names an unknown section, a too-new version and a too-old one", async () => {
    const at = indexOfText(stream, "serial");
    const renamed = patch(stream, at, [...Buffer.from("seriaX")]);
    expect((await loadError(renamed)).message).toContain("unknown section 'seriaX' instance 0");
    const version = at + 6 + 4; // idstr, instance_id, then version_id
    expect((await loadError(patch(stream, version, [0, 0, 0, 5]))).message).toContain("version 5 too new for 'serial' (local 4)");
    expect((await loadError(patch(stream, version, [0, 0, 0, 1]))).message).toContain("version 1 too old for 'serial'");
    const ram = indexOfText(stream, "ram") + 3 + 4;
    expect((await loadError(patch(stream, ram, [0, 0, 0, 3]))).message).toContain("ram: stream version 3 not supported (need 4)");
  });

  it("names an unknown section id, a bad footer and an unknown subsection", async () => {
    const part = stream.indexOf(0x02, indexOfText(stream, "ram")); // the PART's type byte comes after START's footer
    const fields = streamFieldMap(stream);
    const partId = fields.find((f) => f.what === "section_id" && f.offset > part)!;
    expect(partId).toBeDefined();
    const footer = fields.find((f) => f.what === "footer section_id")!;
    expect((await loadError(patch(stream, footer.offset, [0, 0, 0, 9]))).message).toContain(
      "mismatched section id in footer: read 0x9, expected 0x0",
    );
    const sub = indexOfText(stream, "serial/thr_ipending");
    const err = await loadError(patch(stream, sub, [...Buffer.from("serial/thr_ipendinX")]));
    expect(err.message).toContain('unknown subsection "serial/thr_ipendinX"');
    expect(err.message).toContain("section 'serial'");
  });

  it("rejects XBZRLE garbage with clear errors", async () => {
    // the XBZRLE record: be64 offset|0x40|0x20 (CONTINUE), u8 1, be16 len, delta
    const rec = xbzrleStream.findIndex((b, i) => (b & 0x40) !== 0 && i > 16 && xbzrleStream[i + 1] === 1 && xbzrleStream[i - 7] === 0 && (b & 0xf) === 0 && xbzrleStream[i + 2] === 0);
    expect(rec).toBeGreaterThan(0);
    const len = (xbzrleStream[rec + 2]! << 8) | xbzrleStream[rec + 3]!;
    expect(len).toBeGreaterThan(0);
    expect((await loadError(patch(xbzrleStream, rec + 1, [2]), xbzrleTarget)).message).toContain("wrong encoding flag 0x2");
    expect((await loadError(patch(xbzrleStream, rec + 2, [0x10, 0x01]), xbzrleTarget)).message).toContain(
      "length 4097 exceeds the page size 4096",
    );
    // a zero-length nzrun
    const bad = patch(xbzrleStream, rec + 4, new Array(len).fill(0));
    expect((await loadError(bad, xbzrleTarget)).message).toMatch(/XBZRLE page 0x1000 of 'riscv_virt_board.ram': decode error/);
  });

  it("rejects a v2 stream, a wrong magic and an unknown command", async () => {
    expect((await loadError(patch(stream, 4, [0, 0, 0, 2]))).message).toContain("v2 format is obsolete");
    expect((await loadError(patch(stream, 0, [0x51, 0x45, 0x56, 0x4e]))).message).toContain("not a migration stream");
    const cfgEnd = 8 + 1 + 4 + 4;
    const cmd = new Uint8Array([...stream.subarray(0, cfgEnd), 0x08, 0x00, 0x0b, 0x00, 0x00, ...stream.subarray(cfgEnd)]);
    expect((await loadError(cmd)).message).toContain("command 0xb unknown");
    const ping = new Uint8Array([...stream.subarray(0, cfgEnd), 0x08, 0x00, 0x02, 0x00, 0x05, 0, 0, 0, 0, 0, ...stream.subarray(cfgEnd)]);
    expect((await loadError(ping)).message).toContain("PING received with bad length - expecting 4, got 5");
  });

  it("hands OPEN_RETURN_PATH and PING to their callbacks", async () => {
    const cfgEnd = 8 + 1 + 4 + 4;
    const bytes = new Uint8Array([
      ...stream.subarray(0, cfgEnd),
      ...[0x08, 0x00, 0x01, 0x00, 0x00], // OPEN_RETURN_PATH, len 0
      ...[0x08, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x01, 0x02], // PING 0x102
      ...stream.subarray(cfgEnd),
    ]);
    const seen: string[] = [];
    const { qemuLoadvmState } = await import("./loadvm.ts");
    const { QemuFileReader } = await import("./qemu-file.ts");
    await qemuLoadvmState(new QemuFileReader(bytes), target.registry, {
      machineName: "virt",
      onOpenReturnPath: () => void seen.push("rp"),
      onPing: (v) => void seen.push(`ping ${v}`),
    });
    expect(seen).toEqual(["rp", "ping 258"]);
  });

  it("cannot make the analyzer allocate or loop by what its vmdesc claims", () => {
    const text = findVmdesc(stream);
    const head = stream.subarray(0, stream.length - text.length - 5);
    const withDesc = (json: string) => {
      const body = new TextEncoder().encode(json);
      const out = new Uint8Array(head.length + 5 + body.length);
      out.set(head);
      out[head.length] = 0x06;
      new DataView(out.buffer).setUint32(head.length + 1, body.length);
      out.set(body, head.length + 5);
      return out;
    };
    expect(() => analyzeMigration(withDesc(text))).not.toThrow();
    expect(text).toContain('"array_len": 4');
    expect(() => analyzeMigration(withDesc(text.replace('"array_len": 4', '"array_len": 400000000')))).toThrow(
      "field fifo: bad array_len 400000000",
    );
    expect(() => analyzeMigration(withDesc(text.replace('"size": 2', '"size": 2000000000')))).toThrow(MigrationError);
    expect(() => analyzeMigration(withDesc(text.slice(0, -3)))).toThrow("vmdesc is not JSON");
  });
});
