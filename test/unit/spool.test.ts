/** The runner's spool on a real disk: frames kept until acknowledged, segments freed, and reloaded after a crash. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExecutionSpool } from '../../src/runner/spool.js';
import { decodeOutputFrame } from '../../src/shared/protocolV2.js';
import { tempDir } from '../support/databases.js';

const ID = '8f2b1c3e-0c43-4d58-9d0a-6a1f3e2b7c11';
const chunk = (seq: number, data: string) => ({ type: 'output' as const, execution_id: ID, seq, stream: 'stdout' as const, data, line_times: [[0, seq] as [number, number]] });
const segments = (dir: string) => fs.readdirSync(path.join(dir, 'spool', ID)).filter((f) => f.startsWith('seg-'));

describe('spool', () => {
  it('frees a segment once every frame in it is acknowledged, and keeps the rest', () => {
    const dir = tempDir();
    const spool = ExecutionSpool.create(dir, ID);
    const big = 'x'.repeat(3 * 1024 * 1024);
    for (let seq = 1; seq <= 6; seq++) spool.append(chunk(seq, `${seq}${big}`));
    expect(segments(dir)).toHaveLength(2);
    for (const seq of [1, 2]) spool.ack(seq);
    expect(segments(dir)).toHaveLength(2);
    spool.ack(3);
    expect(segments(dir)).toHaveLength(1);
    expect(spool.allAcked()).toBe(false);
    expect(decodeOutputFrame(spool.read(4))?.data.toString().startsWith('5')).toBe(true);
    spool.close();
  });

  it('frees a segment acknowledged before the spool moved on from it', () => {
    const dir = tempDir();
    const spool = ExecutionSpool.create(dir, ID);
    const big = 'x'.repeat(3 * 1024 * 1024);
    for (let seq = 1; seq <= 3; seq++) {
      spool.append(chunk(seq, big));
      spool.ack(seq);
    }
    expect(segments(dir)).toEqual(['seg-000001.bin']);
    spool.append(chunk(4, big)); // the first segment is full: a new one starts
    expect(segments(dir)).toEqual(['seg-000002.bin']);
    spool.close();
  });

  it('reloads what a crashed runner left, unacknowledged frames only, ignoring a torn last record', () => {
    const dir = tempDir();
    const spool = ExecutionSpool.create(dir, ID);
    spool.append(chunk(1, 'héllo\n'));
    spool.append(chunk(2, 'wörld\n'));
    spool.ack(1);
    spool.close();
    fs.appendFileSync(path.join(dir, 'spool', ID, 'seg-000001.bin'), Buffer.from([0, 0, 1, 0, 123]));
    const [again] = ExecutionSpool.loadAll(dir);
    expect(again.count).toBe(2);
    expect(again.isAcked(0)).toBe(true);
    expect(again.isAcked(1)).toBe(false);
    const frame = decodeOutputFrame(again.read(1));
    expect(frame).toMatchObject({ header: { seq: 2, execution_id: ID } });
    expect(frame?.data.toString()).toBe('wörld\n');
    again.ack(2);
    expect(again.allAcked()).toBe(true);
    again.remove();
    expect(fs.existsSync(path.join(dir, 'spool', ID))).toBe(false);
  });
});
