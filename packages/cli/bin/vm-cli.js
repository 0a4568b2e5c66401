#!/usr/bin/env node
// Committed entry point so package managers can link the `vm-cli` bin before `dist/` is built.
import "../dist/cli.js";
