/**
 * Wake-ups across server replicas over PostgreSQL LISTEN/NOTIFY. Each replica listens on one
 * channel; a publish wakes local listeners at once and the other replicas through NOTIFY (a
 * turn's topics in one statement; gathered for REMOTE_DELAY_MS on arrival).
 * A lost notification costs latency only: listeners also look again on their own schedule.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type pgTypes from 'pg';
import { LocalNotifier, type Notifier } from '../core/notifier.js';

const CHANNEL = 'djangocommand_events';
const MAX_PAYLOAD_BYTES = 8000;
/** How long close() waits for the last wake-ups to be sent. */
const CLOSE_FLUSH_MS = 2000;
/** How long another replica's wake-ups are gathered before local listeners hear them. */
const REMOTE_DELAY_MS = 20;
const require = createRequire(import.meta.url);

export class PgNotifier implements Notifier {
  private readonly local = new LocalNotifier();
  private readonly me = randomUUID();
  private listener: pgTypes.Client | undefined;
  private readonly sender: pgTypes.Pool;
  private closed = false;
  /** Topics published this turn of the event loop, sent to the other replicas together. */
  private outgoing = new Set<string>();
  /** Other replicas' topics, told to local listeners together (see heard). */
  private incoming = new Set<string>();

  constructor(private readonly url: string) {
    const pg: typeof pgTypes = require('pg');
    this.sender = new pg.Pool({ connectionString: url, max: 2 });
    this.sender.on('error', () => undefined);
  }

  async start(): Promise<void> {
    const pg: typeof pgTypes = require('pg');
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (n) => {
      const payload = n.payload ?? '';
      const sep = payload.indexOf('|');
      if (sep < 0 || payload.slice(0, sep) === this.me) return;
      this.heard(payload.slice(sep + 1));
    });
    client.on('error', () => this.reconnect());
    client.on('end', () => this.reconnect());
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.listener = client;
  }

  /**
   * Another replica's wake-up reaches local listeners REMOTE_DELAY_MS after the first of a burst,
   * each topic once. The replica that published has acted by then (its listeners heard it at
   * once: its dispatcher has claimed the execution it created), so this one does not race it
   * for the same rows; and a burst of the others' creations makes one dispatch here, not one each.
   */
  private heard(topic: string): void {
    this.incoming.add(topic);
    if (this.incoming.size === 1) setTimeout(() => this.deliverIncoming(), REMOTE_DELAY_MS);
  }

  private deliverIncoming(): void {
    const topics = [...this.incoming];
    this.incoming.clear();
    if (this.closed) return;
    for (const topic of topics) this.local.publish(topic);
  }

  private reconnect(): void {
    if (this.closed || !this.listener) return;
    this.listener = undefined;
    setTimeout(() => {
      if (!this.closed) this.start().catch(() => this.reconnectLater());
    }, 500);
  }

  private reconnectLater(): void {
    setTimeout(() => {
      if (!this.closed) this.start().catch(() => this.reconnectLater());
    }, 2000);
  }

  /**
   * Wakes local listeners now, and the other replicas at the end of this turn: a turn's topics
   * go in one statement, each once (a wake-up said twice says nothing more). A statement a topic
   * was the most frequent query of a replica under load (seven an execution).
   */
  publish(topic: string): void {
    this.local.publish(topic);
    if (this.closed) return;
    this.outgoing.add(`${this.me}|${topic}`);
    if (this.outgoing.size === 1) setImmediate(() => void this.sendOutgoing());
  }

  /** Sends the turn's topics; resolves once sent (or failed: a lost wake-up costs latency only). */
  private sendOutgoing(): Promise<void> {
    // PostgreSQL refuses a payload of 8000 bytes or more, and would fail the whole statement.
    const payloads = [...this.outgoing].filter((p) => Buffer.byteLength(p) < MAX_PAYLOAD_BYTES);
    this.outgoing.clear();
    if (payloads.length === 0 || this.closed) return Promise.resolve();
    // A NOTIFY is a transaction of its own, and each waited for its WAL flush (a disk write) on
    // commit. A wake-up needs no durability: if PostgreSQL crashed before the flush, the
    // replicas' connections break and they look at the database afresh when they reconnect. Set
    // for this transaction only, in the statement: a pooler (PgBouncer) may refuse it as a
    // connection option.
    const notify = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, p) FROM unnest($2::text[]) AS p";
    return this.sender.query(notify, [CHANNEL, payloads]).then(
      () => undefined,
      () => undefined,
    );
  }

  subscribe(topic: string, listener: (topic: string) => void): () => void {
    return this.local.subscribe(topic, listener);
  }

  async close(): Promise<void> {
    // What was published last still goes, once the statements before it are sent (the pool
    // serves no waiting query after end()); a database that does not answer is not waited for.
    const last = this.sendOutgoing();
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([last, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_FLUSH_MS)))]);
    clearTimeout(timer);
    await this.listener?.end().catch(() => undefined);
    await this.sender.end().catch(() => undefined);
  }
}
