/**
 * Cron expressions and time zones of schedules, over the croner library (we parse nothing
 * ourselves): validation that names the wrong field, the next due time, counting the occurrences
 * in a gap (downtime, a pause), and the preview with daylight-saving days marked.
 *
 * Daylight saving (croner follows Vixie cron, as the preview says in words):
 *  - a fixed-time job (one minute and one hour, e.g. `30 2 * * *`) runs once a day: on the
 *    spring-forward day at the first valid time after the gap (03:00 for 02:30 in Amsterdam), on
 *    the fall-back day at the first of the two 02:30s;
 *  - an interval job (`*\/15 * * * *`, `0 * * * *`) skips the times the gap removes and runs in
 *    both passes of the repeated hour.
 * Pure: no I/O, no clock (times are passed in as unix ms).
 */
import { Cron } from 'croner';

export const CRON_FIELDS = ['minute', 'hour', 'day of month', 'month', 'day of week'] as const;
export const CRON_NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export interface CronProblem {
  message: string;
  /** The field at fault (minute, hour, ...), when one is. */
  cronField: (typeof CRON_FIELDS)[number] | null;
}

/** The five fields an expression stands for (nicknames expanded), or a problem in words. */
export function checkCron(expression: string): { fields: string[] } | { problem: CronProblem } {
  const text = expression.trim();
  if (text.startsWith('@')) {
    const expanded = CRON_NICKNAMES[text.toLowerCase()];
    if (!expanded) {
      return { problem: { message: `"${text}" is not a cron nickname we run; use one of ${Object.keys(CRON_NICKNAMES).join(' ')} or five fields.`, cronField: null } };
    }
    return { fields: expanded.split(' ') };
  }
  const fields = text.split(/\s+/).filter(Boolean);
  if (fields.length !== 5) {
    return {
      problem: {
        message: `A cron expression has 5 fields (minute hour day-of-month month day-of-week), or is a nickname like @daily; "${text}" has ${fields.length}.`,
        cronField: null,
      },
    };
  }
  // Each field alone, the others "*": croner's refusal of that one names the field at fault.
  for (let i = 0; i < 5; i++) {
    const probe = fields.map((f, j) => (j === i ? f : '*')).join(' ');
    try {
      new Cron(probe, { mode: '5-part', paused: true });
    } catch (err) {
      const why = cronMessage(err);
      return { problem: { message: `The ${CRON_FIELDS[i]} field "${fields[i]}" is invalid: ${why}.`, cronField: CRON_FIELDS[i] } };
    }
  }
  try {
    new Cron(fields.join(' '), { mode: '5-part', paused: true });
  } catch (err) {
    return { problem: { message: `"${text}" is invalid: ${cronMessage(err)}.`, cronField: null } };
  }
  return { fields };
}

function cronMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^CronPattern:\s*/, '').replace(/\.+$/, '');
}

/** True when the runtime knows the IANA zone (e.g. Europe/Amsterdam). */
export function isTimeZone(zone: string): boolean {
  if (zone.length === 0 || zone.length > 100) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone names this runtime knows, for "did you mean". */
export function knownTimeZones(): string[] {
  return typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : ['UTC'];
}

const crons = new Map<string, Cron>();

/** A parsed expression in its zone; cached, as schedulers ask for the same ones over and over. */
function cronOf(expression: string, zone: string): Cron {
  const key = `${zone}\u0000${expression}`;
  let c = crons.get(key);
  if (!c) {
    const checked = checkCron(expression);
    if ('problem' in checked) throw new Error(checked.problem.message);
    c = new Cron(checked.fields.join(' '), { mode: '5-part', timezone: zone, paused: true });
    if (crons.size >= 10_000) crons.clear();
    crons.set(key, c);
  }
  return c;
}

/** The first occurrence strictly after `after` (unix ms), or null when there is none (30 February). */
export function nextOccurrence(expression: string, zone: string, after: number): number | null {
  const d = cronOf(expression, zone).nextRun(new Date(after));
  return d ? d.getTime() : null;
}

export interface OccurrenceCount {
  first: number | null;
  last: number | null;
  count: number;
  /** The count stopped at the cap; there were at least this many. */
  capped: boolean;
}

/** The occurrences in [from, to): how many, the first and the last (counting stops at `cap`). */
export function occurrencesBetween(expression: string, zone: string, from: number, to: number, cap = 10_000): OccurrenceCount {
  const c = cronOf(expression, zone);
  let first: number | null = null;
  let last: number | null = null;
  let count = 0;
  let at = c.nextRun(new Date(from - 1));
  while (at && at.getTime() < to) {
    if (count >= cap) {
      const final = c.previousRuns(1, new Date(to))[0];
      return { first, last: final ? final.getTime() : last, count, capped: true };
    }
    first ??= at.getTime();
    last = at.getTime();
    count++;
    at = c.nextRun(at);
  }
  return { first, last, count, capped: false };
}

// ---- the preview -------------------------------------------------------------------------

export type DstKind = 'spring_forward' | 'fall_back';

export interface PreviewRun {
  /** Unix ms. */
  at: number;
  /** Wall time in the schedule's zone, "2026-03-29 03:00". */
  local: string;
  /** The zone's offset then, "+02:00". */
  offset: string;
  weekday: string;
  /** Set when the zone changes its clocks on this run's local day. */
  dst: null | { kind: DstKind; note: string };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
      timeZoneName: 'longOffset',
    });
    formatters.set(zone, f);
  }
  return f;
}

interface WallTime {
  date: string;
  time: string;
  weekday: string;
  offset: string;
  offsetMinutes: number;
}

export function wallTime(zone: string, at: number): WallTime {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(zone).formatToParts(new Date(at))) parts[p.type] = p.value;
  const offset = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName.replace('GMT', '');
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(offset);
  const offsetMinutes = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}`, weekday: parts.weekday, offset, offsetMinutes };
}

interface Transition {
  kind: DstKind;
  /** Wall time just before and just after the change ("02:00" → "03:00"). */
  from: string;
  to: string;
}

/** The clock change on `at`'s local day, if any (sampled every 15 minutes across the day). */
function transitionOnDay(zone: string, at: number): Transition | null {
  const day = wallTime(zone, at).date;
  const step = 15 * 60_000;
  let prev: { at: number; w: WallTime } | null = null;
  for (let t = at - 26 * 3600_000; t <= at + 26 * 3600_000; t += step) {
    const w = wallTime(zone, t);
    if (prev && prev.w.offsetMinutes !== w.offsetMinutes && (w.date === day || prev.w.date === day)) {
      // Narrow the change down to the minute.
      let lo = prev.at;
      let hi = t;
      while (hi - lo > 60_000) {
        const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
        if (wallTime(zone, mid).offsetMinutes === prev.w.offsetMinutes) lo = mid;
        else hi = mid;
      }
      const kind: DstKind = w.offsetMinutes > prev.w.offsetMinutes ? 'spring_forward' : 'fall_back';
      const before = wallTime(zone, hi - 1);
      const after = wallTime(zone, hi);
      // "02:59" before a spring-forward reads better as the "02:00" the clocks jump from.
      const from = kind === 'spring_forward' ? shiftTime(after.time, -(w.offsetMinutes - prev.w.offsetMinutes)) : shiftTime(before.time, 1);
      return { kind, from, to: after.time };
    }
    prev = { at: t, w };
  }
  return null;
}

function shiftTime(hhmm: string, minutes: number): string {
  const [h, m] = hhmm.split(':').map(Number);
  const total = (((h * 60 + m + minutes) % 1440) + 1440) % 1440;
  return `${String(Math.floor(total / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
}

/** "30 2 * * *" → "02:30": one minute and one hour, the jobs croner treats as fixed-time. */
function fixedTimeOf(fields: string[]): string | null {
  if (!/^\d+$/.test(fields[0]) || !/^\d+$/.test(fields[1])) return null;
  return `${fields[1].padStart(2, '0')}:${fields[0].padStart(2, '0')}`;
}

/** Clock changes by zone and local day: the timeline previews every schedule's runs at once. */
const transitions = new Map<string, Transition | null>();

/** The next `count` runs after `from`, in the zone, with what daylight saving does to them. */
export function previewRuns(expression: string, zone: string, from: number, count: number): PreviewRun[] {
  const checked = checkCron(expression);
  if ('problem' in checked) throw new Error(checked.problem.message);
  const fixed = fixedTimeOf(checked.fields);
  const c = cronOf(expression, zone);
  const runs: PreviewRun[] = [];
  let at = c.nextRun(new Date(from));
  while (at && runs.length < count) {
    const ms = at.getTime();
    const w = wallTime(zone, ms);
    const key = `${zone}|${w.date}`;
    if (!transitions.has(key)) {
      if (transitions.size >= 10_000) transitions.clear();
      transitions.set(key, transitionOnDay(zone, ms));
    }
    const tr = transitions.get(key)!;
    runs.push({ at: ms, local: `${w.date} ${w.time}`, offset: w.offset, weekday: w.weekday, dst: tr ? { kind: tr.kind, note: dstNote(tr, fixed, w, zone, ms) } : null });
    at = c.nextRun(at);
  }
  return runs;
}

function dstNote(tr: Transition, fixed: string | null, w: WallTime, zone: string, at: number): string {
  if (tr.kind === 'spring_forward') {
    const head = `Clocks go forward from ${tr.from} to ${tr.to} on this day (${zone}).`;
    if (fixed && fixed !== w.time) return `${head} ${fixed} does not exist on this day: the run happens once, at ${w.time} (${w.offset}).`;
    if (fixed) return `${head} ${fixed} is not affected: the run happens once, as usual.`;
    return `${head} Times between ${tr.from} and ${tr.to} do not exist: runs due then are left out.`;
  }
  const head = `Clocks go back from ${tr.from} to ${tr.to} on this day (${zone}).`;
  const repeated = wallTime(zone, at - 3600_000).time === w.time || wallTime(zone, at + 3600_000).time === w.time;
  if (fixed && repeated) return `${head} ${fixed} happens twice on this day: the run happens once, at the first ${fixed} (${w.offset}).`;
  if (fixed) return `${head} ${fixed} is not affected: the run happens once, as usual.`;
  if (repeated) return `${head} Times between ${tr.to} and ${tr.from} happen twice: runs due then happen in both passes (this is the one at ${w.offset}).`;
  return `${head} Times between ${tr.to} and ${tr.from} happen twice: runs due then happen in both passes.`;
}
