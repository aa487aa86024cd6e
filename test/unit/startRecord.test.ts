/** What `start` remembers for a project folder: found again from the folder, trusted only when nobody else could have written it. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readStartRecord, startRecordFile, writeStartRecord } from '../../src/runner/startRecord.js';
import { tempDir } from '../support/databases.js';

describe('start record', () => {
  beforeAll(() => {
    process.env.TMPDIR = tempDir('dc-tmp-'); // os.tmpdir() follows it: this file's own records
  });
  const record = (project: string) => ({ project_dir: project, python: '.venv/bin/python', settings: 'shop.settings', state_dir: '/var/tmp/dc-state' });

  it('is found from the project folder, however it is named', () => {
    const project = tempDir('dc-project-');
    writeStartRecord(record(project));
    const link = path.join(tempDir(), 'link');
    fs.symlinkSync(project, link);
    for (const name of [project, link, project + '/.']) {
      expect(readStartRecord(name)).toMatchObject({ python: '.venv/bin/python', settings: 'shop.settings', state_dir: '/var/tmp/dc-state', project_dir: fs.realpathSync(project) });
    }
    expect(readStartRecord(tempDir('dc-other-'))).toBeUndefined();
    expect(fs.statSync(startRecordFile(project)).mode & 0o777).toBe(0o600);
  });

  it('is ignored when others may write it, or when it is a symlink', () => {
    const project = tempDir('dc-project-');
    writeStartRecord(record(project));
    const file = startRecordFile(project);
    fs.chmodSync(file, 0o666);
    expect(readStartRecord(project)).toBeUndefined();
    fs.chmodSync(file, 0o600);
    expect(readStartRecord(project)).toBeDefined();

    const planted = path.join(tempDir(), 'planted.json');
    fs.renameSync(file, planted);
    fs.symlinkSync(planted, file);
    expect(readStartRecord(project)).toBeUndefined();
  });
});
