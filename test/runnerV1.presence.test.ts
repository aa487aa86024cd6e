/**
 * A v1 runner polls every 2 s; its "last seen" is written only every sightingWriteEveryMs, yet it
 * never looks offline, and a heartbeat (which carries its versions) is always written. On both
 * databases, through the in-process server with a test clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { testApp, type TestApp } from './support/inProcess.js';
import { runnerOnline, sightingWriteEveryMs } from '../src/domain/model.js';

describe.each(DB_KINDS)('v1 runner presence on %s', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp(kind);
  });
  afterEach(async () => t.close());

  const stored = async () => {
    const runners = await t.core.store.listRunners(t.projects.shop.id);
    expect(runners).toHaveLength(1);
    return runners[0];
  };
  const poll = async () => expect((await t.runner('shop', 'GET', '/pending/')).statusCode).toBe(200);
  const heartbeat = async (django: string) =>
    expect((await t.runner('shop', 'POST', '/heartbeat/', { runner_version: '0.3.1', python_version: '3.11.2', django_version: django, commands_hash: '' })).statusCode).toBe(200);

  it('writes "last seen" once per period while polling, stays online, and writes every heartbeat', async () => {
    const every = sightingWriteEveryMs(t.core.settings.runnerOfflineAfterMs);
    const first = t.clock.now;
    await poll();
    expect((await stored()).lastSeenAt).toBe(first);

    // Polls within the period write nothing.
    for (let elapsed = 2000; elapsed < every; elapsed += 2000) {
      t.clock.now = first + elapsed;
      await poll();
      const r = await stored();
      expect(r.lastSeenAt).toBe(first);
      expect(runnerOnline(r, t.clock.now, t.core.settings.runnerOfflineAfterMs)).toBe(true);
    }
    t.clock.now = first + every;
    await poll();
    expect((await stored()).lastSeenAt).toBe(first + every);

    // A heartbeat right after carries new versions: written at once.
    t.clock.now += 1000;
    await heartbeat('5.0');
    expect(await stored()).toMatchObject({ lastSeenAt: t.clock.now, djangoVersion: '5.0' });

    // The dashboard's list shows it online, with the versions of its heartbeat.
    const listed = (await t.api('GET', '/api/v1/projects/shop/runners')).json();
    expect(listed.items ?? listed).toEqual([expect.objectContaining({ online: true, django_version: '5.0' })]);
  });
});
