/**
 * What the runner started, written down in its state folder while it runs
 * (`processes/<pid>.json`), so that a runner that dies without stopping (SIGKILL, the OOM
 * killer, a crash) leaves a list behind. Its next start kills whatever of it is still alive
 * and logs what it did: a command must never run on where nobody sees it.
 *
 * On Linux the processes the runner starts already die with it (bootstrap.py asks for a
 * parent-death signal); this catches the rest: what a command started itself (the signal
 * reaches only the process that asked for it), and systems without prctl.
 *
 * A pid alone may name another process by the next start; a record also holds the process's
 * start time (/proc/PID/stat), and only a process with the same pid and start time, or a
 * member of the process group it led, is killed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Log } from './runner.js';

export interface ProcessRecord {
  pid: number;
  /** The process leads its own process group (pgid == pid): the whole group is stopped. */
  group: boolean;
  /** Clock ticks since boot when it started (Linux); null where /proc cannot tell. */
  start_time: string | null;
  kind: 'command' | 'warm';
  execution_id?: string;
  command?: string;
  runner_pid: number;
  recorded_at: string;
}

const FOLDER = 'processes';

/** Notes a process the runner started; never throws (the record is a safety net, not a duty). */
export function recordProcess(stateDir: string, rec: Omit<ProcessRecord, 'start_time' | 'runner_pid' | 'recorded_at'>): void {
  const full: ProcessRecord = { ...rec, start_time: startTime(rec.pid) ?? null, runner_pid: process.pid, recorded_at: new Date().toISOString() };
  try {
    fs.mkdirSync(path.join(stateDir, FOLDER), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(stateDir, FOLDER, `${rec.pid}.json`), JSON.stringify(full), { mode: 0o600 });
  } catch {
    // A full disk must not stop a command; the parent-death signal still applies.
  }
}

/** The process ended (and was seen to): nothing to clean up after it. */
export function forgetProcess(stateDir: string, pid: number): void {
  try {
    fs.rmSync(path.join(stateDir, FOLDER, `${pid}.json`), { force: true });
  } catch {
    // kept: the next start finds the process gone and drops the record
  }
}

/**
 * Kills what a previous run of the runner left alive: SIGTERM to each group, SIGKILL to what
 * is still there after `graceMs`. Call it only while holding the pid file (no other runner of
 * this state folder is alive). Returns the pids it signalled.
 */
export async function cleanUpLeftovers(stateDir: string, log: Log, graceMs: number): Promise<number[]> {
  const records = readRecords(stateDir);
  const targets: Array<{ rec: ProcessRecord; pids: number[] }> = [];
  for (const rec of records) {
    if (rec.start_time === null) {
      log('warn', `a previous run of the runner (pid ${rec.runner_pid}) started pid ${rec.pid} (${rec.command ?? rec.kind}); this system cannot tell whether it still runs (no /proc): check it yourself`);
      forgetProcess(stateDir, rec.pid);
      continue;
    }
    const pids = survivors(rec);
    if (pids.length > 0) targets.push({ rec, pids });
    else forgetProcess(stateDir, rec.pid);
  }
  if (targets.length === 0) return [];
  for (const { rec, pids } of targets) {
    const what = rec.kind === 'warm' ? 'its warm process' : `execution ${rec.execution_id ?? '?'} (${rec.command ?? '?'})`;
    const others = pids.filter((p) => p !== rec.pid);
    log('warn', `a previous run of the runner (pid ${rec.runner_pid}) left ${what} running: ${pids.includes(rec.pid) ? `pid ${rec.pid}` : `its process ${rec.pid} is gone`}${others.length > 0 ? `, ${others.length} process(es) it started (${others.join(', ')})` : ''}; stopping ${pids.length === 1 ? 'it' : 'them'}`);
    signalAll(rec, pids, 'SIGTERM');
  }
  const all = targets.flatMap((t) => t.pids);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && targets.some((t) => survivors(t.rec).length > 0)) await new Promise((r) => setTimeout(r, 50));
  for (const { rec } of targets) {
    const still = survivors(rec);
    if (still.length > 0) {
      log('warn', `leftover process(es) ${still.join(', ')} did not stop on SIGTERM within ${graceMs / 1000} s; killed (SIGKILL)`);
      signalAll(rec, still, 'SIGKILL');
    }
    forgetProcess(stateDir, rec.pid);
  }
  log('info', `stopped ${all.length} leftover process(es) of a previous run: ${all.join(', ')}`);
  return all;
}

function readRecords(stateDir: string): ProcessRecord[] {
  const dir = path.join(stateDir, FOLDER);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: ProcessRecord[] = [];
  for (const name of names) {
    if (!/^\d+\.json$/.test(name)) continue;
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as ProcessRecord;
      if (Number.isInteger(rec.pid) && rec.pid > 1) out.push(rec);
    } catch {
      fs.rmSync(path.join(dir, name), { force: true }); // half-written by a runner killed mid-write
    }
  }
  return out;
}

/**
 * The live processes of a record: the process itself when its start time still matches, and
 * the members of the group it led. A group id is not handed out again while the group has
 * members; when the pid now names a different group leader, the old group is gone.
 */
function survivors(rec: ProcessRecord): number[] {
  if (rec.start_time === null) return [];
  const now = startTime(rec.pid);
  const same = now !== undefined && now === rec.start_time && !isZombie(rec.pid);
  if (now !== undefined && now !== rec.start_time && groupOf(rec.pid) === rec.pid) return [];
  const pids = same ? [rec.pid] : [];
  if (rec.group) for (const pid of groupMembers(rec.pid)) if (pid !== rec.pid) pids.push(pid);
  return pids;
}

function signalAll(rec: ProcessRecord, pids: number[], signal: NodeJS.Signals): void {
  if (rec.group) {
    try {
      process.kill(-rec.pid, signal);
      return;
    } catch {
      // the group is gone, or not ours: the single processes below
    }
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/** /proc/PID/stat fields after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function startTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

function isZombie(pid: number): boolean {
  return statFields(pid)?.[0] === 'Z';
}

function groupOf(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[2]) : undefined;
}

function groupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(Number(e));
    if (f && f[0] !== 'Z' && Number(f[2]) === pgid) out.push(Number(e));
  }
  return out;
}
