/**
 * Schedule precision: how late is an occurrence's execution, when 2,000 schedules are due in the
 * same minute, and when one is due every second for a minute?
 *
 * One real server (SQLite by default; `--db postgres`) with `--projects` projects (20) and one
 * command per schedule (so no concurrency limit gets in the way). `--burst` schedules are created with a
 * daily cron at the next minute that leaves time to create them all (UTC): they all fall due at
 * that same second. `--spread` more schedules fall due one second apart, starting 20 s after the
 * burst (so it is measured alone): cron has a resolution of one minute, so the benchmark moves their next due times in the
 * database (as the scheduler itself stores them) to one per second. Each fires once (daily cron).
 *
 * The figure is `execution created_at − occurrence due time`, both by the server's clock, read
 * from the database once everything due has fired: p50/p99/max per scenario, plus missed (a
 * schedule without a started occurrence at its due time) and duplicated (a schedule with more
 * than one execution). The benchmark fails if anything is missed or duplicated.
 *
 *   node dist/bench/schedulePrecision.js [--burst 2000] [--spread 60] [--projects 20] [--db postgres]
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { V1Client } from '../test/support/v1Client.js';
import { PROJECT, check, createProject, parseOptions, percentile, positiveInt, progress, round, runBenchmark, sleep, startBenchServer, type BenchServer } from './common.js';

const require = createRequire(import.meta.url);
const opts = parseOptions({
  burst: { default: '2000', help: 'schedules due in the same second' },
  spread: { default: '60', help: 'schedules due one second apart' },
  projects: { default: '20', help: 'projects the schedules are spread over (round robin)' },
});
const PROJECTS = positiveInt('projects', opts.projects);
/** The one-per-second schedules start after the burst is over, so each scenario is measured alone. */
const SPREAD_START_MS = 20_000;
const BURST = positiveInt('burst', opts.burst);
const SPREAD = positiveInt('spread', opts.spread);

/** Runs SQL on the server's database from the side (the server keeps running). */
interface SideDb {
  query<T>(text: string, params: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

function sideDb(bench: BenchServer): SideDb {
  if (bench.db.databaseUrl) {
    const client = new pg.Client({ connectionString: bench.db.databaseUrl });
    const ready = client.connect();
    return {
      async query<T>(text: string, params: unknown[]) {
        await ready;
        let i = 0;
        return (await client.query(text.replace(/\?/g, () => `$${++i}`), params)).rows as T[];
      },
      close: () => client.end(),
    };
  }
  const Sqlite: typeof import('better-sqlite3') = require('better-sqlite3');
  const db = new Sqlite(path.join(bench.db.dataDir, 'djangocommand.sqlite3'));
  db.pragma('busy_timeout = 5000');
  return {
    async query<T>(text: string, params: unknown[]) {
      const stmt = db.prepare(text);
      return (stmt.reader ? stmt.all(...params) : (stmt.run(...params), [])) as T[];
    },
    close: async () => void db.close(),
  };
}

function stats(lates: number[]) {
  const sorted = [...lates].sort((a, b) => a - b);
  return { p50_ms: round(percentile(sorted, 50)), p99_ms: round(percentile(sorted, 99)), max_ms: round(sorted[sorted.length - 1] ?? NaN) };
}

async function main(): Promise<object> {
  const names = Array.from({ length: BURST + SPREAD }, (_, i) => `job${i}`);
  const of = (p: number) => names.filter((_, i) => i % PROJECTS === p);
  const bench = await startBenchServer(opts.db, of(0));
  const side = sideDb(bench);
  try {
    // Each project's executions are created one at a time (its row is locked while one is
    // checked against the concurrency limits); projects proceed in parallel.
    const projects = [PROJECT];
    progress(`creating ${PROJECTS} projects`);
    for (let p = 1; p < PROJECTS; p++) {
      const name = `shop${p}`;
      const key = await createProject(bench, name);
      await new V1Client({ serverUrl: bench.server.url, apiKey: key, maxRetries: 0 }).syncCommands(of(p).map((n) => ({ name: n, app_label: 'demo', help_text: '' })));
      projects.push(name);
    }
    // The minute they fall due: far enough ahead to create them all first.
    const creationBudgetMs = 15_000 + (BURST + SPREAD) * 15;
    const due = Math.ceil((Date.now() + creationBudgetMs) / 60_000) * 60_000;
    const at = new Date(due);
    const cron = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
    progress(`creating ${BURST + SPREAD} schedules (cron "${cron}" UTC, due ${at.toISOString()})`);
    const ids: string[] = [];
    for (let i = 0; i < names.length; i += 16) {
      const made = await Promise.all(
        names.slice(i, i + 16).map((command, j) => bench.api<{ id: string; next_run_at: string }>('POST', '/api/v1/schedules', { project: projects[(i + j) % projects.length], command, cron })),
      );
      for (const s of made) {
        check(s.next_run_at === at.toISOString(), `schedule ${s.id} is due at ${s.next_run_at}, not ${at.toISOString()}`);
        ids.push(s.id);
      }
    }
    check(Date.now() < due - 2000, 'creating the schedules took longer than planned: run again (or lower --burst)');
    const burstIds = ids.slice(0, BURST);
    const spreadIds = ids.slice(BURST);
    const spreadDue = new Map<string, number>();
    for (const [i, id] of spreadIds.entries()) {
      spreadDue.set(id, due + SPREAD_START_MS + i * 1000);
      await side.query('UPDATE schedules SET next_due_at = ? WHERE id = ?', [due + SPREAD_START_MS + i * 1000, id]);
    }
    progress(`waiting for ${at.toISOString()} and ${SPREAD} s after it`);
    const lastDue = due + SPREAD_START_MS + (SPREAD - 1) * 1000;
    await sleep(Math.max(0, lastDue - Date.now()) + 3000);

    const rows = await side.query<{ schedule_id: string; due_at: number | string; outcome: string; created_at: number | string | null }>(
      'SELECT o.schedule_id, o.due_at, o.outcome, e.created_at FROM schedule_occurrences o LEFT JOIN executions e ON e.id = o.execution_id',
      [],
    );
    const counts = await side.query<{ schedule_id: string; n: number | string }>('SELECT schedule_id, COUNT(*) AS n FROM executions WHERE schedule_id IS NOT NULL GROUP BY schedule_id', []);
    const executionsOf = new Map(counts.map((c) => [c.schedule_id, Number(c.n)]));
    const measure = (scheduleIds: string[], dueOf: (id: string) => number) => {
      const byId = new Map(rows.map((r) => [r.schedule_id, r]));
      const lates: number[] = [];
      let missed = 0;
      let duplicated = 0;
      for (const id of scheduleIds) {
        const r = byId.get(id);
        if (!r || r.outcome !== 'started' || r.created_at === null || Number(r.due_at) !== dueOf(id)) missed++;
        else lates.push(Number(r.created_at) - Number(r.due_at));
        if ((executionsOf.get(id) ?? 0) > 1) duplicated++;
      }
      return { schedules: scheduleIds.length, ...stats(lates), missed, duplicated };
    };
    const burst = measure(burstIds, () => due);
    const spread = measure(spreadIds, (id) => spreadDue.get(id)!);
    check(burst.missed + burst.duplicated + spread.missed + spread.duplicated === 0, `missed or duplicated occurrences: ${JSON.stringify({ burst, spread })}`);
    return { benchmark: 'schedulePrecision', db: opts.db, projects: PROJECTS, burst_same_minute: burst, one_per_second: spread };
  } finally {
    await side.close();
    await bench.stop();
  }
}

void runBenchmark({ maxSeconds: 300, main });
