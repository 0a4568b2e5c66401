import { describe, expect, it } from "vitest";
import { parseKeyVals, parseRunArgs, parseSize, UsageError } from "./args.ts";

function err(argv: string[]): string {
  try {
    parseRunArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error("expected a UsageError");
}

describe("parseRunArgs", () => {
  it("reads a typical QEMU bare-program command line", () => {
    const cfg = parseRunArgs(["-M", "virt", "-m", "256M", "-bios", "none", "-kernel", "prog.elf", "-nographic"]);
    expect(cfg.machine).toBe("virt");
    expect(cfg.ramSize).toBe(256 * 2 ** 20);
    expect(cfg.bios).toBe("none");
    expect(cfg.kernel).toBe("prog.elf");
    expect(cfg.nographic).toBe(true);
  });

  it("treats --opt like -opt and accepts --opt=value", () => {
    const cfg = parseRunArgs(["--machine", "virt", "--m=64", "--smp=2", "--timeout", "2.5"]);
    expect(cfg.ramSize).toBe(64 * 2 ** 20);
    expect(cfg.smp).toBe(2);
    expect(cfg.timeoutSeconds).toBe(2.5);
  });

  it("parses QEMU's -m forms", () => {
    expect(parseRunArgs(["-m", "128"]).ramSize).toBe(128 * 2 ** 20);
    expect(parseRunArgs(["-m", "size=1G"]).ramSize).toBe(2 ** 30);
    expect(parseRunArgs(["-m", "1.5G"]).ramSize).toBe(1.5 * 2 ** 30);
    expect(parseRunArgs(["-m", "100K"]).ramSize).toBe(106496);
  });

  it("parses -smp N and -smp cpus=N and topologies", () => {
    expect(parseRunArgs(["-smp", "4"]).smp).toBe(4);
    expect(parseRunArgs(["-smp", "cpus=3"]).smp).toBe(3);
    expect(parseRunArgs(["-smp", "sockets=2,cores=2"]).smp).toBe(4);
    expect(err(["-smp", "64"])).toMatch(/-smp: 64 CPUs requested; this machine supports 1 to 32/);
  });

  it("parses -M with options and -M help", () => {
    expect(parseRunArgs(["-M", "type=virt"]).machine).toBe("virt");
    expect(parseRunArgs(["-M", "help"]).help).toBe("machine");
    expect(parseRunArgs(["-cpu", "help"]).help).toBe("cpu");
    expect(err(["-M", "sifive_u"])).toMatch(/-M: unsupported machine type 'sifive_u'/);
    expect(parseRunArgs(["-M", "virt,accel=tcg,aia=none,aclint=off"]).machine).toBe("virt");
    expect(err(["-M", "virt,aia=aplic"])).toMatch(/-M: aia=aplic is not supported yet/);
    expect(err(["-M", "virt,dumpdtb=x.dtb"])).toMatch(/-M: Property 'virt-machine.dumpdtb' not found/);
  });

  it("parses -bios none, default and a path", () => {
    expect(parseRunArgs([]).bios).toBe("default");
    expect(parseRunArgs(["-bios", "default"]).bios).toBe("default");
    expect(parseRunArgs(["-bios", "fw.bin"]).bios).toEqual({ path: "fw.bin" });
  });

  it("parses -icount forms", () => {
    expect(parseRunArgs(["-icount", "shift=5"]).icountShift).toBe(5);
    expect(parseRunArgs(["-icount", "4,sleep=off"]).icountShift).toBe(4);
    expect(parseRunArgs(["-icount", "auto"]).icountShift).toBe(3);
    expect(err(["-icount", "shift=11"])).toMatch(/out of range/);
    expect(err(["-icount", "rr=record"])).toMatch(/icount property 'rr'/);
  });

  it("parses -serial backends and rejects others", () => {
    expect(parseRunArgs(["-serial", "mon:stdio"]).serial).toBe("mon:stdio");
    expect(parseRunArgs(["-serial", "stdio"]).serial).toBe("stdio");
    expect(err(["-serial", "tcp::4444,server"])).toMatch(/-serial: serial backend 'tcp::4444,server' is not supported yet/);
  });

  it("names an unknown option as QEMU does", () => {
    expect(err(["-foo"])).toBe("-foo: invalid option");
    expect(err(["--frobnicate=1"])).toBe("--frobnicate=1: invalid option");
  });

  it("says which known QEMU options are not supported yet", () => {
    expect(err(["-gdb", "tcp::1234"])).toBe("-gdb: not supported yet");
    expect(err(["-incoming", "rdma:0:4444"])).toBe("-incoming rdma:0:4444: only file:, exec:, tcp:, unix:, fd: and defer are supported yet");
    expect(err(["-append", "console=ttyS0"])).toBe("-append: not supported yet");
  });

  it("takes -incoming file:, exec: and defer, and names an unknown protocol as QEMU", () => {
    expect(parseRunArgs(["-incoming", "file:/tmp/x.mig"]).incoming).toBe("file:/tmp/x.mig");
    expect(parseRunArgs(["-incoming", "exec:cat /tmp/x.mig"]).incoming).toBe("exec:cat /tmp/x.mig");
    expect(parseRunArgs(["-incoming", "defer"]).incoming).toBe("defer");
    expect(parseRunArgs(["-incoming", "tcp:0:4444"]).incoming).toBe("tcp:0:4444");
    expect(parseRunArgs([]).incoming).toBeUndefined();
    expect(err(["-incoming", "bogus"])).toBe("-incoming bogus: unknown migration protocol: bogus");
    expect(err(["-incoming", "file:"])).toBe("-incoming file:: unknown migration protocol: file:");
  });

  it("names an option whose argument is missing or malformed", () => {
    expect(err(["-kernel"])).toBe("-kernel: requires an argument");
    expect(err(["-m", "lots"])).toMatch(/^-m: invalid size 'lots'/);
    expect(err(["--timeout", "soon"])).toMatch(/^-timeout: invalid timeout 'soon'/);
    expect(err(["--timeout", "-1"])).toMatch(/^-timeout: invalid timeout/);
    expect(err(["-nographic=1"])).toMatch(/invalid option/);
    expect(err(["--nographic=1"])).toBe("-nographic: takes no argument");
    expect(err(["-cpu", "sifive-u54"])).toMatch(/-cpu: unable to find CPU model 'sifive-u54'/);
  });

  it("rejects a stray positional argument", () => {
    expect(err(["disk.img"])).toMatch(/^disk.img: unexpected argument/);
  });

  it("accepts harmless QEMU options", () => {
    const cfg = parseRunArgs(["-display", "none", "-monitor", "none", "-nic", "none", "-accel", "tcg", "-name", "x", "-no-reboot"]);
    expect(cfg.noReboot).toBe(true);
    expect(err(["-display", "gtk"])).toMatch(/-display gtk: not supported yet/);
  });
});

describe("monitor and run-state options", () => {
  it("parses -qmp unix and tcp sockets in QEMU's new and old spellings", () => {
    expect(parseRunArgs(["-qmp", "unix:/tmp/x.sock,server=on,wait=off"]).monitors).toEqual([
      { mode: "control", chardev: { address: { transport: "unix", path: "/tmp/x.sock" }, wait: false }, pretty: false },
    ]);
    const cfg = parseRunArgs(["-qmp", "unix:a.sock,server,nowait", "-qmp", "tcp:127.0.0.1:4444,server=on", "-qmp-pretty", "tcp::0,server=on,wait=off"]);
    expect(cfg.monitors.map((m) => m.chardev)).toEqual([
      { address: { transport: "unix", path: "a.sock" }, wait: false },
      { address: { transport: "tcp", host: "127.0.0.1", port: 4444 }, wait: true },
      { address: { transport: "tcp", host: "", port: 0 }, wait: false },
    ]);
    expect(cfg.monitors[2]!.pretty).toBe(true);
    expect(err(["-qmp", "unix:x.sock"])).toMatch(/-qmp: only listening sockets are supported/);
    expect(err(["-qmp", "tcp:localhost,server=on"])).toMatch(/-qmp: expected tcp:HOST:PORT/);
    expect(err(["-qmp", "tcp::99999,server=on"])).toMatch(/-qmp: invalid port '99999'/);
    expect(err(["-qmp", "unix:x,server=on,wait=maybe"])).toBe("-qmp: Parameter 'wait' expects 'on' or 'off'");
    expect(err(["-qmp", "unix:x,server=on,bogus=1"])).toBe("-qmp: Invalid parameter 'bogus'");
    expect(err(["-qmp", "vc"])).toMatch(/-qmp vc: not supported yet/);
    expect(err(["-qmp", "stdio"])).toMatch(/-qmp stdio: not supported yet/);
  });

  it("parses -chardev socket with -mon in either order, and -monitor", () => {
    const cfg = parseRunArgs(["-mon", "chardev=m0,mode=control", "-chardev", "socket,id=m0,path=/tmp/m.sock,server=on,wait=off", "-monitor", "stdio"]);
    expect(cfg.monitors).toEqual([
      { mode: "control", chardev: { address: { transport: "unix", path: "/tmp/m.sock" }, wait: false }, pretty: false },
      { mode: "readline", chardev: "stdio", pretty: false },
    ]);
    expect(parseRunArgs(["-monitor", "none"]).monitors).toEqual([]);
    expect(err(["-mon", "chardev=nope"])).toBe('-mon: chardev "nope" not found');
    expect(err(["-chardev", "pty,id=x"])).toMatch(/chardev backend 'pty' is not supported yet/);
    // QEMU's long spelling of mon:stdio.
    const mux = parseRunArgs(["-chardev", "stdio,id=char0,mux=on,signal=off", "-serial", "chardev:char0", "-mon", "chardev=char0"]);
    expect([mux.serial, mux.monitors]).toEqual(["mon:stdio", []]);
    const plain = parseRunArgs(["-serial", "null", "-mon", "chardev=c1", "-chardev", "stdio,id=c1"]);
    expect(plain.monitors).toEqual([{ mode: "readline", chardev: "stdio", pretty: false }]);
    expect(err(["-serial", "chardev:nope"])).toBe('-serial: chardev "nope" not found');
    expect(err(["-chardev", "stdio,id=c,mux=on", "-mon", "chardev=c,mode=control"])).toMatch(/QMP on stdio is not supported yet/);
    expect(err(["-chardev", "socket,path=x,server=on"])).toBe("-chardev: Parameter 'id' is missing");
  });

  it("parses -S, -no-shutdown, -name, -d and -D", () => {
    const cfg = parseRunArgs(["-S", "-no-shutdown", "-name", "guest=vm1,debug-threads=on", "-d", "guest_errors,unimp", "-D", "log.txt"]);
    expect([cfg.startPaused, cfg.noShutdown, cfg.name, [...cfg.log], cfg.logFile]).toEqual([true, true, "vm1", ["guest_errors", "unimp"], "log.txt"]);
    expect(parseRunArgs(["-d", "help"]).help).toBe("log");
    expect(err(["-d", "in_asm"])).toBe("-d: unknown log item 'in_asm' (use -d help to list them)");
  });
});

describe("parseSize and parseKeyVals", () => {
  it("parse QEMU's syntax", () => {
    expect(parseSize("2G", "-m")).toBe(2 ** 31);
    expect(parseSize("4096B", "-m")).toBe(4096);
    expect([...parseKeyVals("virt,x=1", "type", "-M")]).toEqual([["type", "virt"], ["x", "1"]]);
    expect(() => parseKeyVals("a,b", "type", "-M")).toThrow(/expected key=value, got 'b'/);
  });
});
