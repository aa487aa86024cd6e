/** Cleaning up after a killed runner, on real processes: what it left is stopped, a pid that names another process now is not. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanUpLeftovers, recordProcess, type ProcessRecord } from '../../src/runner/leftovers.js';
import { tempDir } from '../support/databases.js';

function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** `sh` leading its own process group, with a `sleep` child in it (what a command may start itself). */
function commandWithChild(): { leader: number; done: Promise<void> } {
  const child = spawn('sh', ['-c', 'sleep 60 & wait'], { detached: true, stdio: 'ignore' });
  return { leader: child.pid!, done: new Promise((r) => child.on('exit', () => r())) };
}

const groupMembers = (pgid: number) =>
  fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e) && running(Number(e))).filter((e) => {
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid;
    } catch {
      return false;
    }
  });

describe('leftovers of a killed runner', () => {
  it('stops the whole process group of a recorded command, and logs it', async () => {
    const stateDir = tempDir('dc-state-');
    const { leader, done } = commandWithChild();
    await new Promise((r) => setTimeout(r, 200));
    expect(groupMembers(leader)).toHaveLength(2);
    recordProcess(stateDir, { pid: leader, group: true, kind: 'command', execution_id: 'e1', command: 'migrate' });
    const logs: string[] = [];
    const stopped = await cleanUpLeftovers(stateDir, (_level, message) => logs.push(message), 2000);
    await done;
    expect(stopped).toHaveLength(2);
    expect(groupMembers(leader)).toEqual([]);
    expect(logs[0]).toMatch(new RegExp(`left execution e1 \\(migrate\\) running: pid ${leader}, 1 process\\(es\\) it started`));
    expect(fs.readdirSync(path.join(stateDir, 'processes'))).toEqual([]);
  });

  it('leaves alone a process that only has the recorded pid, and forgets ended ones', async () => {
    const stateDir = tempDir('dc-state-');
    const { leader, done } = commandWithChild();
    try {
      await new Promise((r) => setTimeout(r, 200));
      fs.mkdirSync(path.join(stateDir, 'processes'));
      const stale: ProcessRecord = { pid: leader, group: true, start_time: '1', kind: 'command', runner_pid: 1, recorded_at: new Date().toISOString() };
      fs.writeFileSync(path.join(stateDir, 'processes', `${leader}.json`), JSON.stringify(stale));
      fs.writeFileSync(path.join(stateDir, 'processes', '999999999.json'), JSON.stringify({ ...stale, pid: 999999999 }));
      const logs: string[] = [];
      expect(await cleanUpLeftovers(stateDir, (_level, message) => logs.push(message), 500)).toEqual([]);
      expect(logs).toEqual([]);
      expect(groupMembers(leader)).toHaveLength(2);
      expect(fs.readdirSync(path.join(stateDir, 'processes'))).toEqual([]);
    } finally {
      process.kill(-leader, 'SIGKILL');
      await done;
    }
  });
});
