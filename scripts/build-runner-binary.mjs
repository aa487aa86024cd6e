#!/usr/bin/env node
/**
 * Builds the runner as one executable for Django hosts without Node.js (a Node single
 * executable application): dist/runner-binary/djangocommand, with the runner's verbs only
 * (start [-d], stop, status, restart). It needs nothing on the host but the Django project's
 * own Python: bootstrap.py travels inside it as an asset (see src/runner/bootstrap.ts).
 *
 *   npm run build:runner-binary        (node scripts/build-runner-binary.mjs)
 *
 * 1. esbuild bundles src/cli/runnerMain.ts and its dependencies into one CommonJS file;
 * 2. `node --experimental-sea-config sea-config.json` turns it (and bootstrap.py) into a blob;
 * 3. postject injects the blob into a copy of the Node executable running this script.
 * The result runs on the platform it was built on (Linux x64 glibc here: any Debian or Ubuntu
 * based image, e.g. python:3.12-slim; not Alpine/musl).
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'postject';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const seaConfig = JSON.parse(fs.readFileSync(path.join(root, 'sea-config.json'), 'utf8'));
const outDir = path.join(root, 'dist/runner-binary');
const binary = path.join(outDir, 'djangocommand');
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const started = Date.now();

fs.mkdirSync(outDir, { recursive: true });

/** src/version.ts reads package.json at run time; the binary has no package.json beside it. */
const fixedVersion = {
  name: 'fixed-version',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(version)};`, loader: 'ts' }));
  },
};

/**
 * ws loads the native helpers bufferutil and utf-8-validate when present and works without
 * them; a single executable can load no file, so they are absent (a require that throws).
 */
const withoutNativeHelpers = {
  name: 'without-native-helpers',
  setup(b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: 'absent' }));
    b.onLoad({ filter: /.*/, namespace: 'absent' }, (args) => ({ contents: `throw new Error(${JSON.stringify(`${args.path} is not in the runner binary`)});`, loader: 'js' }));
  },
};

await build({
  absWorkingDir: root,
  entryPoints: [path.join(root, 'src/cli/runnerMain.ts')],
  outfile: path.join(root, seaConfig.main),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // A single executable's main script is CommonJS: give `import.meta.url` its file.
  banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  define: { 'import.meta.url': '__importMetaUrl' },
  plugins: [fixedVersion, withoutNativeHelpers],
  legalComments: 'none',
  logLevel: 'warning',
});

execFileSync(process.execPath, ['--experimental-sea-config', 'sea-config.json'], { cwd: root, stdio: 'inherit' });

// Write aside and rename: a runner started from the old binary keeps its file.
const partial = `${binary}.partial`;
fs.rmSync(partial, { force: true });
fs.copyFileSync(process.execPath, partial);
fs.chmodSync(partial, 0o755);
await inject(partial, 'NODE_SEA_BLOB', fs.readFileSync(path.join(root, seaConfig.output)), {
  sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
});
fs.renameSync(partial, binary);

const mb = (fs.statSync(binary).size / 1048576).toFixed(0);
console.log(`runner binary: ${path.relative(root, binary)} (${mb} MiB, Node ${process.version}, ${process.platform}-${process.arch}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
