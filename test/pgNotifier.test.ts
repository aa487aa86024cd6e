/**
 * Wake-ups between replicas over a real PostgreSQL: what one notifier publishes, another hears;
 * a turn's topics go in one statement, each once; a topic published right before close still goes;
 * a topic too long for NOTIFY is dropped alone; another replica's burst is heard once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from './support/databases.js';
import { PgNotifier } from '../src/store/pgNotifier.js';
import { topics } from '../src/core/notifier.js';

describe('PgNotifier', () => {
  let db: FreshDatabase | undefined;
  const open: PgNotifier[] = [];

  async function notifier(): Promise<PgNotifier> {
    db ??= await freshDatabase('postgres');
    const n = new PgNotifier(db.databaseUrl!);
    await n.start();
    open.push(n);
    return n;
  }

  /** Counts the statements the notifier sends to PostgreSQL. */
  function countStatements(n: PgNotifier): () => number {
    const sender = (n as unknown as { sender: { query: (...a: unknown[]) => Promise<unknown> } }).sender;
    const query = sender.query.bind(sender);
    let count = 0;
    sender.query = (...a: unknown[]) => {
      count++;
      return query(...a);
    };
    return () => count;
  }

  function heardBy(n: PgNotifier, topic: string): string[] {
    const heard: string[] = [];
    n.subscribe(topic, (t) => heard.push(t));
    return heard;
  }

  const until = async (done: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };

  afterEach(async () => {
    for (const n of open.splice(0)) await n.close();
    await db?.drop();
    db = undefined;
  });

  it("sends a turn's topics in one statement, each once, and the other replica hears each", async () => {
    const a = await notifier();
    const b = await notifier();
    const statements = countStatements(a);
    const localProject = heardBy(a, topics.anyProject);
    const remoteProject = heardBy(b, topics.anyProject);
    const remoteOther = heardBy(b, topics.notifications);
    for (let i = 0; i < 30; i++) a.publish(topics.project(`p${i % 10}`));
    a.publish(topics.notifications);
    a.publish(topics.notifications);
    // Local listeners hear every publish at once.
    expect(localProject).toHaveLength(30);
    await until(() => remoteProject.length >= 10 && remoteOther.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(statements()).toBe(1);
    expect(remoteProject.sort()).toEqual(Array.from({ length: 10 }, (_, i) => topics.project(`p${i}`)).sort());
    expect(remoteOther).toEqual([topics.notifications]);
    // The next turn is a statement of its own, and a replica does not hear its own topics back.
    a.publish(topics.project('p0'));
    await until(() => remoteProject.length >= 11);
    expect(remoteProject).toHaveLength(11);
    expect(statements()).toBe(2);
    expect(localProject).toHaveLength(31);
  });

  it("tells local listeners a burst of another replica's wake-ups once, after the publisher's own", async () => {
    const a = await notifier();
    const b = await notifier();
    const local = heardBy(a, topics.anyProject);
    const remote = heardBy(b, topics.anyProject);
    // 50 turns: 50 NOTIFY statements of the same topic.
    for (let i = 0; i < 50; i++) {
      a.publish(topics.project('p1'));
      await new Promise((r) => setImmediate(r));
    }
    expect(local).toHaveLength(50);
    await until(() => remote.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(remote.length).toBeGreaterThanOrEqual(1);
    expect(remote.length).toBeLessThan(25);
  });

  it('still sends what was published right before close, with the sender busy with earlier turns', async () => {
    const a = await notifier();
    const b = await notifier();
    const heard = heardBy(b, topics.anyProject);
    // Three turns: the first two statements hold both of the sender's connections.
    a.publish(topics.project('t1'));
    await new Promise((r) => setImmediate(r));
    a.publish(topics.project('t2'));
    await new Promise((r) => setImmediate(r));
    a.publish(topics.project('t3'));
    await a.close();
    await until(() => heard.length >= 3);
    expect(heard.sort()).toEqual(['t1', 't2', 't3'].map(topics.project));
  });

  it('drops a topic too long for NOTIFY alone, not the rest of its turn', async () => {
    const a = await notifier();
    const b = await notifier();
    const heard = heardBy(b, topics.anyProject);
    a.publish(topics.project('ok1'));
    a.publish(topics.project('x'.repeat(8000)));
    a.publish(topics.project('ok2'));
    await until(() => heard.length >= 2);
    expect(heard.sort()).toEqual([topics.project('ok1'), topics.project('ok2')]);
  });
});
