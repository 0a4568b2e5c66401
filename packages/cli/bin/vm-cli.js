#!/usr/bin/env node
// Committed entry point so package managers can link the `vm-cli` bin before `dist/` is built.
import { setFlagsFromString } from "node:v8";

// Compile each function when its module loads, not at its first call: the code a live
// migration's switch-over runs once per migration (the pause, the final RAM pass, the device
// state) was otherwise parsed and compiled inside the guest's downtime (~0.25 ms of it).
// Costs ~20 ms and ~2 MB at start. Set before the first import of our code.
setFlagsFromString("--no-lazy");
await import("../dist/cli.js");
