#!/usr/bin/env node
import { run } from './cli.js';
import { processContext } from './context.js';
import { resumableDownload } from './download/state.js';
import { installProxyDispatcher } from './http.js';
import { removeAllTempsSync } from './temp-files.js';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    removeAllTempsSync();
    // A partial download with its state stays under DCX_HOME/downloads for the next run to resume.
    const resumable = resumableDownload() ? '; the partial download is kept: running the same command again resumes it' : '';
    process.stderr.write(`\ndcx: interrupted${resumable}\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

// `dcx … | head` closes stdout early: that is the reader's choice, not a failure with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

installProxyDispatcher();

// No top-level await: the single executable (scripts/build-client.mjs) runs this as a CommonJS script.
void run(process.argv.slice(2), processContext()).then(({ code, error }) => {
  if (error) process.stderr.write(`dcx: ${error}\n`);
  // Flush stdout, then exit at once: keep-alive sockets must not hold the process open.
  process.stdout.write('', () => process.exit(code));
});
