/**
 * Which projects may have executions to offer a polling v1 runner (queued, or dispatched and not
 * started), without a query per poll. Most polls find nothing: 2,000 v1 runners polling every
 * 2 s are 1,000 queries a second for empty answers.
 *
 * One read a second names every project with such executions; between reads, a project's
 * wake-up (the project topic: an execution was queued, requeued, approved, or capacity freed)
 * marks it until the next read. A wake-up lost (another replica's NOTIFY while LISTEN was
 * reconnecting) delays an offer by one read at most.
 */
import type { Core } from './context.js';
import { topics } from './notifier.js';

/** Between reads of the projects with work; also the longest a lost wake-up can delay an offer. */
const READ_EVERY_MS = 1_000;
/** A project not polled for this long is no longer watched (its runners left, or it was deleted). */
const FORGET_AFTER_MS = 60_000;

class DispatchableProjects {
  private withWork = new Set<string>();
  private readAt = -Infinity;
  private reading: Promise<void> | null = null;
  /** Projects woken since before the last read began, with the number of their last wake-up. */
  private readonly woken = new Map<string, number>();
  private wakeups = 0;
  /** Projects polled lately: their wake-up subscription, and when they were last polled. */
  private readonly watched = new Map<string, { unsubscribe: () => void; polledAt: number }>();

  constructor(private readonly core: Core) {}

  /** False when the project surely has nothing to offer: the poll needs no query. */
  async mayHaveWork(projectId: string): Promise<boolean> {
    this.watch(projectId);
    if (performance.now() - this.readAt >= READ_EVERY_MS) await this.read();
    return this.withWork.has(projectId) || this.woken.has(projectId);
  }

  private watch(projectId: string): void {
    const now = performance.now();
    const w = this.watched.get(projectId);
    if (w) {
      w.polledAt = now;
      return;
    }
    const wake = () => void this.woken.set(projectId, ++this.wakeups);
    this.watched.set(projectId, { unsubscribe: this.core.notifier.subscribe(topics.project(projectId), wake), polledAt: now });
    // Unwatched until now, its wake-ups since the last read went unheard: it may have work.
    wake();
  }

  private read(): Promise<void> {
    this.reading ??= (async () => {
      const startedAt = performance.now();
      const before = this.wakeups;
      try {
        this.withWork = new Set(await this.core.store.projectsWithStatus(['queued', 'dispatched']));
        // Wake-ups from before the read began are in what it found; later ones stay marked.
        for (const [projectId, n] of this.woken) if (n <= before) this.woken.delete(projectId);
        this.readAt = startedAt;
        for (const [projectId, w] of this.watched) {
          if (startedAt - w.polledAt < FORGET_AFTER_MS) continue;
          w.unsubscribe();
          this.watched.delete(projectId);
          this.woken.delete(projectId);
        }
      } finally {
        this.reading = null;
      }
    })();
    return this.reading;
  }
}

const perCore = new WeakMap<Core, DispatchableProjects>();

/** The tracker of this core (one per server process). */
export function dispatchableProjects(core: Core): DispatchableProjects {
  let d = perCore.get(core);
  if (!d) perCore.set(core, (d = new DispatchableProjects(core)));
  return d;
}
