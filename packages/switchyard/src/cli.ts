#!/usr/bin/env node
/**
 * `switchyard` entry point: `switchyard [options]` runs the router; `switchyard agent ...` announces a
 * backend; `switchyard demo` runs the demo. Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for
 * bad options or an address already in use (one line naming the option and the fix), 1 otherwise.
 */
import { runAgentCli } from '@switchyard/agent';
import { runDemo } from './demo.js';
import { runRouterCli } from './router-cli.js';

const [command, ...rest] = process.argv.slice(2);
let code: number;
if (command === 'agent') code = await runAgentCli(rest);
else if (command === 'demo') code = await runDemo(rest);
else code = await runRouterCli(process.argv.slice(2));
process.exitCode = code;
