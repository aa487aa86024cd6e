/**
 * Talking to bootstrap.py, the stdlib-only Python file that runs inside the Django project's
 * own interpreter: it reads the DJANGOCOMMAND_* settings and lists the commands with their
 * argparse definitions (and, in warmProcess.ts, keeps a pre-loaded Django to fork from).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** bootstrap.py ships as source next to the compiled code (dist/src/runner → src/runner/python). */
export function bootstrapPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, 'python', 'bootstrap.py'), path.resolve(here, '../../../src/runner/python/bootstrap.py')]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`bootstrap.py not found next to ${here}`);
}

export function checkProject(p: PythonProject): void {
  if (!fs.existsSync(path.join(p.projectDir, 'manage.py'))) {
    throw new UserError('DC_CONFIG', `No manage.py in ${p.projectDir}: run the runner in the Django project folder, or pass --project-dir.`, 2);
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
          return reject(new UserError('DC_CONFIG', `Python interpreter "${p.python}" not found: pass --python with the project's interpreter (e.g. .venv/bin/python).`, 2));
        }
        const why = parsed?.error ?? (stderr.trim().split('\n').slice(-1)[0] || err?.message || 'no output');
        reject(new UserError('DC_CONFIG', `Cannot load the Django project in ${p.projectDir} with ${p.python}: ${why}`, 2));
      },
    );
  });
}

export function readDjangoSettings(p: PythonProject): Promise<DjangoSettingsReport> {
  return runBootstrap<DjangoSettingsReport>(p, 'settings');
}

export async function discoverCommands(p: PythonProject): Promise<DiscoveredCommand[]> {
  return (await runBootstrap<{ commands: DiscoveredCommand[] }>(p, 'commands')).commands;
}
