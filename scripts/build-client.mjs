#!/usr/bin/env node
// `npm run build:client`: the dcx client on its own, for a recipient's machine, without this repository.
//   dist/client-package/  an npm package (`npm pack` it, then `npm i -g dcx-client-<version>.tgz`): one bundled
//                         ES module, no dependencies to download, Node >= 20.19
//   dist/sea/dcx          with --sea: a single executable (Node SEA): this Node binary with the bundle inside,
//                         nothing else to install
// esbuild bundles src/client/main.ts with its three dependencies (commander, cli-progress, unzipper).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const entry = join(root, 'src/client/main.ts');
// The version is compiled in: a bundle has no package.json of the repository's beside it to read.
const define = { 'globalThis.DCX_CLIENT_VERSION': JSON.stringify(pkg.version) };
// unzipper's Open.s3 (never used by dcx) requires the AWS SDK lazily: left out of the bundle.
const common = {
  entryPoints: [entry],
  bundle: true,
  external: ['@aws-sdk/client-s3'],
  platform: 'node',
  target: 'node20',
  define,
  legalComments: 'none',
  logLevel: 'warning',
};

async function npmPackage() {
  const out = join(root, 'dist/client-package');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    ...common,
    format: 'esm',
    outfile: join(out, 'dcx.mjs'),
    // Bundled CommonJS dependencies call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __dcxCreateRequire } from 'node:module';\nconst require = __dcxCreateRequire(import.meta.url);",
    },
  });
  chmodSync(join(out, 'dcx.mjs'), 0o755);
  const clientPackage = {
    name: 'dcx-client',
    version: pkg.version,
    description: 'The DCX client: fetch, verify, save and confirm .dcx deliveries; enrol and pull your inbox',
    license: pkg.license,
    type: 'module',
    bin: { dcx: 'dcx.mjs' },
    files: ['dcx.mjs', 'README.md'],
    engines: pkg.engines,
  };
  writeFileSync(join(out, 'package.json'), JSON.stringify(clientPackage, null, 2) + '\n');
  writeFileSync(
    join(out, 'README.md'),
    '# dcx-client\n\nThe DCX client alone. `npm i -g dcx-client-<version>.tgz`, then `dcx --help`.\n' +
      'Check the server fingerprint that `dcx trust <server-url>` or `dcx enrol` shows against the one your administrator gives you.\n',
  );
  console.log(`build-client: ${out} (dcx-client ${pkg.version})`);
}

async function singleExecutable() {
  const out = join(root, 'dist/sea');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  // Node's single executable applications run one CommonJS script.
  await build({ ...common, format: 'cjs', outfile: join(out, 'dcx.cjs') });
  const config = { main: join(out, 'dcx.cjs'), output: join(out, 'sea-prep.blob'), disableExperimentalSEAWarning: true };
  writeFileSync(join(out, 'sea-config.json'), JSON.stringify(config));
  execFileSync(process.execPath, ['--experimental-sea-config', join(out, 'sea-config.json')], { stdio: 'pipe' });
  const binary = join(out, 'dcx');
  copyFileSync(process.execPath, binary);
  chmodSync(binary, 0o755);
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules/postject/dist/cli.js'),
      binary,
      'NODE_SEA_BLOB',
      config.output,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ],
    // postject warns about ELF note sections it does not need; a failure still throws with its output.
    { stdio: 'pipe' },
  );
  rmSync(config.output);
  console.log(`build-client: ${binary} (single executable, Node ${process.version}, linux-${process.arch})`);
}

await npmPackage();
if (process.argv.includes('--sea')) await singleExecutable();
