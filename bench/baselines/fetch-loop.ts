/*
 * The baseline of the inbox row: `dcx fetch` of N links in one process (the same CLI code, run N times by
 * src/client/cli.ts's `run`), so that neither side pays a process start per document.
 * Usage: node fetch-loop.js <url> <count> <out-dir>; DCX_HOME as for dcx. Prints {confirmed, ms}.
 */
import { run } from '../../src/client/cli.js';
import { DcxHome } from '../../src/client/home.js';

const [url, countText, out] = process.argv.slice(2);
const ctx = { home: DcxHome.fromEnv(), out: () => undefined, notice: () => undefined, progress: false };
const started = process.hrtime.bigint();
let confirmed = 0;
for (let i = 0; i < Number(countText); i++) {
  const result = await run(['fetch', url, '--out', out, '--json'], ctx);
  if (result.code !== 0) throw new Error(`fetch ${i} failed (${result.code}): ${result.error}`);
  confirmed++;
}
console.log(JSON.stringify({ confirmed, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
