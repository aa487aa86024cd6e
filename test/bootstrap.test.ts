/**
 * bootstrap.py's own checks, written in Python with the standard library: the argparse schema
 * helpers, and warm runs compared byte for byte with cold `manage.py` runs of every demo command.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHON, REPO } from './support/serverProcess.js';

describe('bootstrap.py', () => {
  it('describes argparse definitions as JSON (schema unit tests)', () => {
    const r = spawnSync(PYTHON, [path.join(REPO, 'test/python/test_bootstrap_schema.py')], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/\nOK\s*$/);
    expect(r.status).toBe(0);
  });

  it('forks warm runs identical to cold manage.py runs', () => {
    const out = execFileSync(PYTHON, [path.join(REPO, 'test/python/warm_driver.py')], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000 });
    const summary = JSON.parse(out);
    expect(summary.failed).toEqual([]);
    expect(summary.ok).toBe(true);
  }, 150_000);
});
