/** Cron expressions over croner: the field at fault, nicknames, gaps counted, and what daylight saving does to runs. */
import { describe, expect, it } from 'vitest';
import { checkCron, isTimeZone, nextOccurrence, occurrencesBetween, previewRuns } from '../../src/domain/scheduleCron.js';
import { planDue } from '../../src/core/schedules/scheduler.js';
import type { Schedule } from '../../src/domain/schedule.js';

const utc = (iso: string) => Date.parse(iso);

describe('cron expressions', () => {
  it('names the field at fault', () => {
    const field = (e: string) => ('problem' in checkCron(e) ? (checkCron(e) as { problem: { cronField: string | null } }).problem.cronField : 'ok');
    expect(['61 * * * *', '* 24 * * *', '* * 32 * *', '* * * 13 *', '* * * * 8', '*/0 * * * *', 'x * * * *'].map(field)).toEqual([
      'minute', 'hour', 'day of month', 'month', 'day of week', 'minute', 'minute',
    ]);
    expect(field('0 3 * *')).toBeNull();
    expect(field('0 0 3 * * *')).toBeNull(); // six fields: seconds are not ours to run
    expect(field('@reboot')).toBeNull();
    for (const ok of ['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '*/15 9-17 * * MON-FRI', '0 0 L * *']) expect(field(ok)).toBe('ok');
  });

  it('knows IANA zones and nothing else', () => {
    expect(isTimeZone('Europe/Amsterdam')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Europe/Amsterdan')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });

  it('counts the occurrences of a gap, up to a cap, with the real last one', () => {
    expect(occurrencesBetween('*/10 * * * *', 'UTC', utc('2026-01-01T00:00:00Z'), utc('2026-01-01T01:00:00Z'))).toEqual({
      first: utc('2026-01-01T00:00:00Z'), last: utc('2026-01-01T00:50:00Z'), count: 6, capped: false,
    });
    const year = occurrencesBetween('* * * * *', 'UTC', utc('2026-01-01T00:00:00Z'), utc('2027-01-01T00:00:00Z'));
    expect(year).toMatchObject({ count: 10_000, capped: true, last: utc('2026-12-31T23:59:00Z') });
    expect(nextOccurrence('0 0 31 2 *', 'UTC', utc('2026-01-01T00:00:00Z'))).toBeNull();
  });

  it('marks an interval job in the repeated hour of the fall-back day: it runs in both passes', () => {
    const runs = previewRuns('30 * * * *', 'Europe/Amsterdam', utc('2026-10-25T00:00:00Z'), 3);
    expect(runs.map((r) => [r.local, r.offset])).toEqual([
      ['2026-10-25 02:30', '+02:00'],
      ['2026-10-25 02:30', '+01:00'],
      ['2026-10-25 03:30', '+01:00'],
    ]);
    expect(runs[1].dst?.note).toContain('happen twice: runs due then happen in both passes (this is the one at +01:00)');
  });

  it('plans a misfire after downtime within and beyond the catch-up window', () => {
    const s = { id: 's', projectId: 'p', cron: '*/5 * * * *', timezone: 'UTC', nextDueAt: utc('2026-01-01T10:00:00Z'), catchUpSeconds: 900, misfire: 'run_once' } as Schedule;
    const plan = planDue(s, utc('2026-01-01T10:32:00Z'), 'me');
    expect(plan.nextDueAt).toBe(utc('2026-01-01T10:35:00Z'));
    expect(plan.occurrences.map((o) => [new Date(o.dueAt).toISOString().slice(11, 16), o.outcome, o.count, o.trigger])).toEqual([
      ['10:00', 'missed', 4, 'cron'],
      ['10:20', 'missed', 2, 'cron'],
      ['10:30', 'pending', 1, 'catch_up'],
    ]);
    const onTime = planDue(s, utc('2026-01-01T10:00:30Z'), 'me');
    expect(onTime.occurrences.map((o) => o.outcome)).toEqual(['pending']);
  });
});
