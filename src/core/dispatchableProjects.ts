/**
 * Which projects may have executions to hand out (queued, or dispatched and not started),
 * without a query each time it is asked. Most asks find nothing: 2,000 v1 runners polling every
 * 2 s are 1,000 polls a second for empty answers, and a fleet of v2 runners reconnecting after a
 * restart is one first look at the queue per runner.
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
const PROJECT_TOPIC = topics.project('');

class DispatchableProjects {
  private withWork = new Set<string>();
  private readAt = -Infinity;
  private reading: Promise<void> | null = null;
  /** Projects woken since before the last read began, with the number of their last wake-up. */
  private readonly woken = new Map<string, number>();
  private wakeups = 0;

  constructor(private readonly core: Core) {
    // Heard before the first read: every wake-up from then on is either in a read or marked.
    core.notifier.subscribe(topics.anyProject, (topic) => void this.woken.set(topic.slice(PROJECT_TOPIC.length), ++this.wakeups));
  }

  /** False when the project surely has nothing to hand out: no query of its executions is needed. */
  async mayHaveWork(projectId: string): Promise<boolean> {
    if (performance.now() - this.readAt >= READ_EVERY_MS) await this.read();
    return this.withWork.has(projectId) || this.woken.has(projectId);
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
