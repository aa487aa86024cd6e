/** The example Django project: its migrated database per test, and cold `manage.py` runs for comparison. */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { EXAMPLE_DIR, PYTHON } from './serverProcess.js';
import { tempDir } from './databases.js';

export interface ExampleProject {
  dir: string;
  env: Record<string, string>;
  /** Runs `python manage.py ...` directly, as a person with SSH would. */
  manage(args: string[]): { code: number | null; stdout: Buffer; stderr: Buffer };
}

export function exampleProject(): ExampleProject {
  const env = { EXAMPLE_DB_PATH: path.join(tempDir('dc-example-'), 'db.sqlite3'), PYTHONUNBUFFERED: '1' };
  execFileSync(PYTHON, ['manage.py', 'migrate', '-v', '0'], { cwd: EXAMPLE_DIR, env: { ...process.env, ...env } });
  return {
    dir: EXAMPLE_DIR,
    env,
    manage(args) {
      const r = spawnSync(PYTHON, ['manage.py', ...args], { cwd: EXAMPLE_DIR, env: { ...process.env, ...env }, maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}
