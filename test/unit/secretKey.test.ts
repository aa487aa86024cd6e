/** The key file made on first start: several servers starting at once on one data folder get one complete key. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/databases.js';
import { REPO } from '../support/serverProcess.js';

describe('the secret key file', () => {
  it('is made once, whole, when servers start at the same moment', async () => {
    const dir = tempDir('dc-key-');
    const module = path.join(REPO, 'dist/src/core/notifications/secretBox.js');
    const script = `import(${JSON.stringify(module)}).then((m) => process.stdout.write(m.loadSecretKey(undefined, ${JSON.stringify(dir)}).toString('hex')))`;
    const read = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
      });
    const keys = await Promise.all(Array.from({ length: 8 }, read));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.readdirSync(dir)).toEqual(['secret.key']);
    expect(fs.statSync(path.join(dir, 'secret.key')).mode & 0o777).toBe(0o600);
  });
});
