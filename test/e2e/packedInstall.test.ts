/**
 * The npm package as a user gets it: `npm pack`, `npm install -g` of the tarball into a fresh
 * prefix, then the installed `djangocommand` from an unrelated folder as the server, the admin
 * tool, the runner (next to the example Django project) and the CLI that runs `check`.
 *
 * `npm test` has just built dist/, so the pack skips the prepack build (--ignore-scripts).
 * better-sqlite3 would compile from source for about 70 s (its prebuilt download is out of
 * reach here): the install takes this repository's compiled copy through prebuild-install's
 * own local-prebuilds folder, as it would take a downloaded one. Everything else is a real
 * install from the npm registry, with its install scripts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/databases.js';
import { EXAMPLE_DIR, PYTHON, REPO } from '../support/serverProcess.js';
import { exampleProject, type ExampleProject } from '../support/example.js';
import { envWithoutNpm, runProgram, startProgram, type RunningProgram } from '../support/program.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };

/** A prebuild-install tarball of the repository's compiled better-sqlite3, or undefined if there is none. */
function localPrebuilds(dir: string): string | undefined {
  const sqlite = path.join(REPO, 'node_modules/better-sqlite3');
  const compiled = path.join(sqlite, 'build/Release/better_sqlite3.node');
  if (!fs.existsSync(compiled)) return undefined;
  const { version } = JSON.parse(fs.readFileSync(path.join(sqlite, 'package.json'), 'utf8')) as { version: string };
  const staging = path.join(dir, 'staging');
  fs.mkdirSync(path.join(staging, 'build/Release'), { recursive: true });
  fs.copyFileSync(compiled, path.join(staging, 'build/Release/better_sqlite3.node'));
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  execFileSync('tar', ['-czf', path.join(dir, name), '-C', staging, 'build']);
  return dir;
}

describe('the npm tarball, installed globally', () => {
  const work = tempDir('dc-packed-');
  const elsewhere = tempDir('dc-elsewhere-');
  const prefix = path.join(work, 'prefix');
  const bin = path.join(prefix, 'bin/djangocommand');
  const dataDir = path.join(work, 'data');
  let tarball: string;
  let installOutput: string;
  let server: RunningProgram | undefined;
  let runner: RunningProgram | undefined;
  let example: ExampleProject;

  /** The installed command, run from a folder that has nothing to do with the repository. */
  const djangocommand = (args: string[], env: Record<string, string> = {}) => runProgram(bin, args, { cwd: elsewhere, env: { ...process.env, ...env } });

  beforeAll(async () => {
    const pack = await runProgram('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: REPO, env: envWithoutNpm() });
    expect(pack.code, pack.stderr).toBe(0);
    tarball = path.join(work, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0].filename);

    const prebuilds = localPrebuilds(path.join(work, 'prebuilds'));
    const started = Date.now();
    const install = await runProgram(
      'npm',
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--allow-scripts=better-sqlite3,bufferutil', tarball],
      { cwd: elsewhere, env: envWithoutNpm(prebuilds ? { npm_config_better_sqlite3_local_prebuilds: prebuilds } : {}), timeoutMs: 240_000 },
    );
    installOutput = install.stdout + install.stderr;
    expect(install.code, installOutput).toBe(0);
    console.log(`packedInstall: npm install -g of the tarball took ${((Date.now() - started) / 1000).toFixed(1)} s${prebuilds ? ' (better-sqlite3 from the local prebuild)' : ''}`);
    example = exampleProject();
  }, 300_000);

  afterAll(async () => {
    await runner?.stop();
    await server?.stop();
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  it('ships only what runs: compiled code, the dashboard, bootstrap.py and shell.py, and the README', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/src/cli/main.js', 'dist/dashboard/index.html', 'src/runner/python/bootstrap.py', 'src/runner/python/shell.py']));
    expect(files.filter((f) => /^(dist\/)?(test|bench|example)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') || f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/') && f !== 'src/runner/python/bootstrap.py' && f !== 'src/runner/python/shell.py')).toEqual([]);
  });

  it('installs on Node 20 without engine warnings', () => {
    expect(installOutput).not.toMatch(/EBADENGINE/);
    expect(installOutput).not.toMatch(/install scripts not yet covered/);
    expect(fs.existsSync(path.join(prefix, 'lib/node_modules', pkg.name, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
  });

  it('runs the server, the admin tool, the runner and the CLI from any folder', async () => {
    const version = await djangocommand(['--version']);
    expect(version.stdout.trim()).toBe(pkg.version);

    const listening = await startProgram(bin, ['server', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0'], /listening on (http:\/\/\S+)/, {
      cwd: elsewhere,
      env: { ...process.env, DJANGOCOMMAND_LOG_LEVEL: 'warn' },
      timeoutMs: 30_000,
    });
    server = listening;
    const url = listening.match[1];
    // The dashboard ships in the package and is served from it.
    const page = await fetch(url + '/');
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<script[^>]+app\.js/);

    const project = await djangocommand(['admin', 'create-project', 'shop', '--json', '--data-dir', dataDir]);
    expect(project.code, project.stderr).toBe(0);
    const token = await djangocommand(['admin', 'create-token', '--json', '--data-dir', dataDir]);
    expect(token.code, token.stderr).toBe(0);

    runner = await startProgram(bin, ['start', '--python', PYTHON, '--project-dir', EXAMPLE_DIR, '--state-dir', path.join(work, 'runner-state')], /connected to .* as runner/, {
      cwd: elsewhere,
      env: { ...process.env, ...example.env, DJANGOCOMMAND_API_KEY: JSON.parse(project.stdout).key, DJANGOCOMMAND_SERVER_URL: url },
      timeoutMs: 60_000,
    });

    const check = await djangocommand(['run', 'check'], { DJANGOCOMMAND_URL: url, DJANGOCOMMAND_TOKEN: JSON.parse(token.stdout).token });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toContain('System check identified no issues');
  }, 120_000);
});
