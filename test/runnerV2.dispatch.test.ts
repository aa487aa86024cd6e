/**
 * Dispatch to a v2 runner reads the project's queue when work may have been queued (a wake-up, a
 * new session, the safety sweep), and not for every slot a runner frees once the queue was found
 * empty. An execution whose wake-up was lost still goes out, by the safety sweep. What it read is
 * claimed side by side, up to the runner's free slots. Over a real WebSocket to a listening
 * in-process server, on both databases.
 */
import { describe, expect, it, vi } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import type { AddressInfo } from 'node:net';
import { appWithRunnerPerTest, connectV2, hello, MIGRATE_COMMAND } from './support/v2Socket.js';
import type { Execute, ServerMessage } from '../src/shared/protocolV2.js';
import { dispatchableProjects } from '../src/core/dispatchableProjects.js';


describe.each(DB_KINDS)('dispatching to a v2 runner on %s', (kind) => {
  const live = appWithRunnerPerTest(kind);

  const create = async (): Promise<string> => {
    const res = await live.t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [] });
    expect(res.statusCode).toBe(201);
    return (res.json() as { id: string }).id;
  };
  const executeOf = (id: string, timeoutMs?: number) => live.runner.next((m): m is Execute => m.type === 'execute' && m.execution_id === id, timeoutMs);
  const runToEnd = async (id: string) => {
    await executeOf(id);
    live.runner.send({ type: 'started', execution_id: id, pid: 1, warm: true, at: live.t.clock.now });
    live.runner.send({ type: 'finished', execution_id: id, exit_code: 0, status: 'success', last_seq: 0, at: live.t.clock.now });
    await live.runner.next((m): m is ServerMessage => m.type === 'finished_ack' && m.execution_id === id);
    await live.runner.settle();
  };

  it('reads the queue once when a run ends with nothing queued, and still hands out what comes next', async () => {
    await runToEnd(await create());
    // The safety sweep would read the queue whenever it catches an execution queued: not counted here.
    vi.spyOn(live.t.core.store, 'projectsWithStatus').mockResolvedValue([]);
    const reads = vi.spyOn(live.t.core.store, 'countQueued');
    await runToEnd(await create());
    // One read for the wake-up of the new execution, at most one for the end; none for the freed slot.
    expect(reads.mock.calls.length).toBeLessThanOrEqual(2);
    await runToEnd(await create());
    expect(reads.mock.calls.length).toBeLessThanOrEqual(4);
  });

  it('hands out an execution whose wake-up was lost, after the queue was found empty', async () => {
    await runToEnd(await create());
    const publish = live.t.core.notifier.publish;
    live.t.core.notifier.publish = () => undefined;
    const id = await create();
    live.t.core.notifier.publish = publish;
    // The safety sweep runs every second.
    await executeOf(id, 3_000);
  });

  it('reads no queue when a runner joins a project with nothing queued, and hands out at once what was queued before it joined', async () => {
    const url = `http://127.0.0.1:${(live.t.app.server.address() as AddressInfo).port}`;
    const join = async () => {
      const r = await connectV2(url, live.t.projects.blog.key, live.t.clock.now);
      r.send(hello());
      r.send({ type: 'commands', commands: [MIGRATE_COMMAND] });
      await r.settle();
      return r;
    };
    const looks = vi.spyOn(dispatchableProjects(live.t.core), 'mayHaveWork');
    const reads = vi.spyOn(live.t.core.store, 'countQueued');
    const first = await join();
    expect(await looks.mock.results[0].value).toBe(false);
    expect(reads).not.toHaveBeenCalled();
    await first.close();

    // Only the project's wake-up, heard while no runner of it was connected, can tell: the
    // safety sweep (projects with queued executions) is kept from seeing it.
    const real = live.t.core.store.projectsWithStatus.bind(live.t.core.store);
    vi.spyOn(live.t.core.store, 'projectsWithStatus').mockImplementation((statuses) => (statuses.includes('dispatched') ? real(statuses) : Promise.resolve([])));
    const res = await live.t.api('POST', '/api/v1/projects/blog/executions', { command: 'migrate', argv: [] });
    expect(res.statusCode).toBe(201);
    const id = (res.json() as { id: string }).id;
    const second = await join();
    try {
      await second.next((m): m is Execute => m.type === 'execute' && m.execution_id === id, 3_000);
    } finally {
      await second.close();
    }
  });

  it('claims for all runners at once, each its share and never more than its free slots, and the rest as slots free', async () => {
    const url = `http://127.0.0.1:${(live.t.app.server.address() as AddressInfo).port}`;
    await live.t.api('PATCH', '/api/v1/projects/shop/commands/migrate', { max_concurrency: 10 });
    const second = await connectV2(url, live.t.projects.shop.key, live.t.clock.now);
    second.send(hello({ max_concurrency: 4 }));
    await second.settle();
    const runners = [live.runner, second];
    try {
      // Claims wait until six executions are queued: the pass they belong to claims for both runners.
      const store = live.t.core.store;
      const claim = store.claimQueued.bind(store);
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let claiming = 0;
      let mostAtOnce = 0;
      vi.spyOn(store, 'claimQueued').mockImplementation(async (...args) => {
        mostAtOnce = Math.max(mostAtOnce, ++claiming);
        try {
          await gate;
          return await claim(...args);
        } finally {
          claiming--;
        }
      });
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        live.t.clock.now += 1; // oldest first needs distinct creation times
        ids.push(await create());
      }
      open();
      const executes = (r: typeof second) => r.received.filter((m): m is Execute => m.type === 'execute').map((m) => m.execution_id);
      await live.runner.next((m): m is Execute => m.type === 'execute' && executes(live.runner).length === 4, 3_000);
      await second.next((m): m is Execute => m.type === 'execute' && executes(second).length === 4, 3_000);
      await Promise.all(runners.map((r) => r.settle()));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(mostAtOnce).toBe(2);
      // Each took its 4 (its free slots), the 8 oldest between them; the last 2 wait.
      expect([...executes(live.runner), ...executes(second)].sort()).toEqual(ids.slice(0, 8).sort());

      const done = executes(second)[0];
      second.send({ type: 'started', execution_id: done, pid: 1, warm: true, at: live.t.clock.now });
      second.send({ type: 'finished', execution_id: done, exit_code: 0, status: 'success', last_seq: 0, at: live.t.clock.now });
      await second.next((m): m is Execute => m.type === 'execute' && m.execution_id === ids[8], 3_000);
      await Promise.all(runners.map((r) => r.settle()));
      expect(executes(live.runner)).toHaveLength(4);
      expect(executes(second)).toHaveLength(5);
    } finally {
      await second.close();
    }
  });

  it('hands a read-only execution to the runner that enforces read-only mode, though another has more free slots', async () => {
    const url = `http://127.0.0.1:${(live.t.app.server.address() as AddressInfo).port}`;
    // The first runner (4 slots) does not enforce read-only mode; this one (2 slots) does.
    const enforcing = await connectV2(url, live.t.projects.shop.key, live.t.clock.now);
    enforcing.send(hello({ max_concurrency: 2, features: ['read_only'] }));
    await enforcing.settle();
    try {
      const res = await live.t.api('POST', '/api/v1/projects/shop/executions', { command: 'migrate', argv: [], read_only: true });
      expect(res.statusCode).toBe(201);
      const id = (res.json() as { id: string }).id;
      // Well before the safety sweep would look again.
      await enforcing.next((m): m is Execute => m.type === 'execute' && m.execution_id === id, 900);
      expect(live.runner.received.some((m) => m.type === 'execute' && m.execution_id === id)).toBe(false);
    } finally {
      await enforcing.close();
    }
  });
});
