/**
 * Talking to bootstrap.py, the stdlib-only Python file that runs inside the Django project's
 * own interpreter: it reads the DJANGOCOMMAND_* settings and lists the commands with their
 * argparse definitions (and, in warmProcess.ts, keeps a pre-loaded Django to fork from).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sea from 'node:sea';
import { fileURLToPath } from 'node:url';
import type { CodeScheduleSpec } from '../domain/codeSchedule.js';
import { UserError } from '../shared/errors.js';
import type { DjangoSettingsReport } from './settings.js';

export interface PythonProject {
  python: string;
  projectDir: string;
  env: NodeJS.ProcessEnv;
}

export interface DiscoveredCommand {
  name: string;
  app_label: string;
  help_text: string;
  schema: unknown;
  error?: string;
}

/** The SEA asset name of bootstrap.py in the runner binary (scripts/build-runner-binary.mjs). */
export const BOOTSTRAP_ASSET = 'bootstrap.py';

let located: string | undefined;

/**
 * Where bootstrap.py is. The npm package ships it as source (`files` in package.json): from
 * dist/src/runner (installed or built) it is ../../../src/runner/python/bootstrap.py; from the
 * sources (tests) it is ./python/bootstrap.py. The runner binary carries it as an asset and
 * writes it out once (Python needs a file).
 */
export function bootstrapPath(): string {
  if (located) return located;
  if (sea.isSea()) return (located = extractBootstrap(sea.getAsset(BOOTSTRAP_ASSET, 'utf8')));
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, 'python', 'bootstrap.py'), path.resolve(here, '../../../src/runner/python/bootstrap.py')]) {
    if (fs.existsSync(candidate)) return (located = candidate);
  }
  throw new Error(`bootstrap.py not found next to ${here}`);
}

/**
 * Writes the binary's bootstrap.py to <tmp>/djangocommand-<uid>-bootstrap/<sha256>/bootstrap.py.
 * The folder is this user's alone (0700, checked): the Django project's Python runs that file,
 * so no other user may plant or change it. The name stays bootstrap.py (bootstrap.py looks for
 * itself in sys.orig_argv by that name); the hash keeps binaries of different versions apart.
 */
function extractBootstrap(source: string): string {
  const uid = process.getuid?.() ?? 0;
  const root = path.join(os.tmpdir(), `djangocommand-${uid}-bootstrap`);
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const owned = fs.lstatSync(root);
  if (!owned.isDirectory() || owned.uid !== uid || (owned.mode & 0o077) !== 0) {
    throw new UserError('DC_CONFIG', `${root} must be a folder of this user's alone (mode 0700): remove it, or set TMPDIR to another folder.`, undefined, { exitCode: 2 });
  }
  const dir = path.join(root, createHash('sha256').update(source).digest('hex').slice(0, 16));
  const file = path.join(dir, 'bootstrap.py');
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === source) return file;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Another runner may be writing the same file: write aside, then rename over it.
  const partial = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(partial, source, { mode: 0o600 });
  fs.renameSync(partial, file);
  return file;
}

export function checkProject(p: PythonProject): void {
  if (!fs.existsSync(path.join(p.projectDir, 'manage.py'))) {
    throw new UserError('DC_CONFIG', `No manage.py in ${p.projectDir}: run the runner in the Django project folder, or pass --project-dir.`, undefined, { exitCode: 2 });
  }
}

function runBootstrap<T>(p: PythonProject, mode: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      p.python,
      [bootstrapPath(), mode],
      { cwd: p.projectDir, env: { ...p.env, COLUMNS: '80' }, maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const lastLine = stdout.trim().split('\n').pop() ?? '';
        let parsed: { ok?: boolean; error?: string } | undefined;
        try {
          parsed = JSON.parse(lastLine);
        } catch {
          parsed = undefined;
        }
        if (parsed?.ok) return resolve(parsed as T);
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
          return reject(new UserError('DC_CONFIG', `Python interpreter "${p.python}" not found: pass --python with the project's interpreter (e.g. .venv/bin/python).`, undefined, { exitCode: 2 }));
        }
        const why = parsed?.error ?? (stderr.trim().split('\n').slice(-1)[0] || err?.message || 'no output');
        reject(new UserError('DC_CONFIG', `Cannot load the Django project in ${p.projectDir} with ${p.python}: ${why}`, undefined, { exitCode: 2 }));
      },
    );
  });
}

export function readDjangoSettings(p: PythonProject): Promise<DjangoSettingsReport> {
  return runBootstrap<DjangoSettingsReport>(p, 'settings');
}

export async function discoverCommands(p: PythonProject): Promise<DiscoveredCommand[]> {
  return (await discoverCatalogue(p)).commands;
}

export interface DiscoveredCatalogue {
  commands: DiscoveredCommand[];
  /** DJANGOCOMMAND_SCHEDULES with its defaults filled in; null when the setting is not defined. */
  schedules: CodeScheduleSpec[] | null;
}

/** The commands and the code schedules, in one Django start (a wrong DJANGOCOMMAND_SCHEDULES shape stops here). */
export async function discoverCatalogue(p: PythonProject): Promise<DiscoveredCatalogue> {
  const report = await runBootstrap<{ commands: DiscoveredCommand[]; schedules?: CodeScheduleSpec[] | null }>(p, 'commands');
  return { commands: report.commands, schedules: report.schedules ?? null };
}
