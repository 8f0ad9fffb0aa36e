#!/usr/bin/env node
// The rtprelay-ctl executable: runs the CLI with the process's arguments and environment.
import { runCli } from './cli.js';

runCli(process.argv.slice(2), process.env, { out: (s) => console.log(s), err: (s) => console.error(s) })
  .then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
