/**
 * The replica soak, short: 3 server replicas on one PostgreSQL database, 3 runners of ours spread
 * over them, 5 executions a second for 60 s through the REST API of random live replicas, and a
 * replica killed with SIGKILL (and started again) every 20 s. Nothing may be stuck, lost, or
 * have lost or doubled output bytes. The 10-minute version is `node dist/bench/soak.js`.
 */
import { describe, expect, it } from 'vitest';
import { runSoak, soakFailures } from '../support/soak.js';

describe('replica soak on PostgreSQL: 3 replicas, one killed every 20 s for 60 s', () => {
  it('ends every execution, none lost, every output exact', async () => {
    const result = await runSoak({ durationS: 60, killEveryS: 20, rate: 5, settleS: 40, stallS: 20, log: (line) => process.stderr.write(`[soak] ${line}\n`) });
    process.stderr.write(`[soak] ${JSON.stringify(result)}\n`);
    expect(result.kills).toBe(2);
    expect(result.executions).toBeGreaterThan(150);
    expect(soakFailures(result)).toEqual([]);
  }, 150_000);
});
