#!/usr/bin/env node
/**
 * Bundles the dashboard (src/dashboard/main.ts and its CSS, xterm's included) with esbuild into
 * dist/dashboard/{index.html, app.js, app.css}, minified. The page loads nothing from anywhere
 * but the server that serves it: the build fails if the HTML or CSS names an outside URL.
 *
 *   node scripts/build-dashboard.mjs [--watch]
 */
import { build, context } from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src/dashboard');
const out = path.join(root, 'dist/dashboard');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const options = {
  absWorkingDir: root,
  entryPoints: { app: path.join(src, 'main.ts') },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome111', 'firefox113', 'safari16.4'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  tsconfig: path.join(src, 'tsconfig.json'),
  // Fonts or images would have to be bundled, never fetched from elsewhere.
  loader: { '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.png': 'file' },
  metafile: true,
};

const hash = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 12);

/** Anything the browser would fetch from another origin: absolute or protocol-relative URLs. */
const OUTSIDE = /(?:url\(\s*['"]?|@import\s+['"]?|(?:src|href)\s*=\s*['"]?)(?:https?:)?\/\//i;

function finish() {
  const js = path.join(out, 'app.js');
  const css = path.join(out, 'app.css');
  for (const f of [js, css]) if (!fs.existsSync(f)) throw new Error(`build-dashboard: ${path.relative(root, f)} was not produced`);
  const html = fs
    .readFileSync(path.join(src, 'index.html'), 'utf8')
    .replace('__HASH_JS__', hash(js))
    .replace('__HASH_CSS__', hash(css));
  for (const [name, text] of [['index.html', html], ['app.css', fs.readFileSync(css, 'utf8')]]) {
    const m = OUTSIDE.exec(text);
    if (m) throw new Error(`build-dashboard: ${name} loads something from outside this server: ${text.slice(m.index, m.index + 80)}`);
  }
  fs.writeFileSync(path.join(out, 'index.html'), html);
  const size = (f) => `${(fs.statSync(f).size / 1024).toFixed(0)} KiB`;
  console.log(`dashboard: dist/dashboard/ app.js ${size(js)}, app.css ${size(css)}`);
}

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
if (watch) {
  const ctx = await context({
    ...options,
    plugins: [{ name: 'finish', setup: (b) => b.onEnd((r) => { if (r.errors.length === 0) finish(); }) }],
  });
  await ctx.watch();
  console.log('dashboard: watching src/dashboard/ …');
} else {
  await build(options);
  finish();
}
