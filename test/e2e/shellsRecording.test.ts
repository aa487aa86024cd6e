/**
 * A shell's recording on both databases: asciicast v2 written in parts as it goes (never the
 * whole session in memory), characters split across two frames recorded whole, and the parts
 * read back in order as one valid cast.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from '../support/databases.js';
import { testApp, type TestApp } from '../support/inProcess.js';
import { recordingParts, ShellRecording } from '../../src/core/shells.js';
import type { ShellSession } from '../../src/store/shellStore.js';

describe.each(DB_KINDS)('shell recordings on %s', (kind) => {
  let t: TestApp;
  let session: ShellSession;
  beforeEach(async () => {
    t = await testApp(kind);
    session = {
      id: randomUUID(), projectId: t.projects.shop.id, userId: 'u', userLabel: 'admin@example.com', runnerId: null, status: 'open', readOnly: true, becameWritable: false,
      cols: 100, rows: 30, openedAt: t.clock.now, endedAt: null, endReason: null, exitCode: null, recordingBytes: 0, recordingParts: 0,
    };
    await t.core.store.shells.createSession(session);
  });
  afterEach(async () => t.close());

  const read = async () => {
    let text = '';
    for await (const part of recordingParts(t.core, session.id)) text += part;
    return text;
  };

  it('writes asciicast v2 in parts, keeps split characters whole, and keeps no input typed unseen', async () => {
    const errors: unknown[] = [];
    const rec = new ShellRecording(t.core, session, (err) => errors.push(err));
    const euro = Buffer.from('€ ünïcode 🎉\r\n');
    rec.output(euro.subarray(0, 1));
    t.clock.now += 1500;
    rec.output(euro.subarray(1, 13));
    rec.output(euro.subarray(13));
    rec.input(Buffer.from('print(1)\r'));
    rec.hiddenInput();
    rec.resize(120, 40);
    rec.marker('writable: fix it');
    // A flood: 3 MB of output is cut into parts of ~256 KiB.
    const line = 'y'.repeat(1023) + '\n';
    for (let i = 0; i < 3 * 1024; i++) rec.output(Buffer.from(line));
    // Not in the store yet, and said so: the relay pauses the shell on this (flow control).
    expect(rec.backlog).toBeGreaterThan(3 * 1024 * 1024);
    await rec.close();
    expect(rec.backlog).toBe(0);
    expect(errors).toEqual([]);

    const stored = await t.core.store.shells.getSession(session.id);
    expect(stored!.recordingParts).toBeGreaterThan(10);
    const [header, ...events] = (await read()).trimEnd().split('\n').map((l) => JSON.parse(l) as [number, string, string]);
    expect(header).toMatchObject({ version: 2, width: 100, height: 30, timestamp: Math.floor(session.openedAt / 1000) });
    expect(events.slice(0, 6)).toEqual([
      [1.5, 'o', '€ ünïcode'],
      [1.5, 'o', ' 🎉\r\n'],
      [1.5, 'i', 'print(1)\r'],
      [1.5, 'r', '120x40'],
      [1.5, 'm', 'writable: fix it'],
      [1.5, 'o', line],
    ]);
    expect(events.filter((e) => e[1] === 'o' && e[2] === line)).toHaveLength(3 * 1024);
    expect(stored!.recordingBytes).toBe(Buffer.byteLength(await read()));
  });
});
