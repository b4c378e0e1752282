#!/usr/bin/env node
import { run } from './cli.js';
import { processContext } from './context.js';
import { removeAllTempsSync } from './temp-files.js';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    removeAllTempsSync();
    process.stderr.write('\ndcx: interrupted\n');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

const { code, error } = await run(process.argv.slice(2), processContext());
if (error) process.stderr.write(`dcx: ${error}\n`);
// Flush stdout, then exit at once: keep-alive sockets must not hold the process open.
process.stdout.write('', () => process.exit(code));
