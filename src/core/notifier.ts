/**
 * Wake-ups: "something changed for this execution/project". Listeners re-read the store, so a
 * lost or duplicated wake-up costs latency, never correctness. This in-process notifier serves
 * one server process; several replicas also poll (see sse/sweeper intervals).
 */
import { EventEmitter } from 'node:events';

export interface Notifier {
  publish(topic: string): void;
  /** `kind:*` (see topics.anyProject) hears every `kind:…` topic; the listener gets the topic published. */
  subscribe(topic: string, listener: (topic: string) => void): () => void;
}

export class LocalNotifier implements Notifier {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(topic: string): void {
    this.emitter.emit(topic, topic);
    const kind = topic.indexOf(':');
    if (kind > 0) this.emitter.emit(`${topic.slice(0, kind)}:*`, topic);
  }

  subscribe(topic: string, listener: (topic: string) => void): () => void {
    const safe = (published: string) => {
      try {
        listener(published);
      } catch {
        // A listener's failure must not break the publisher's loop.
      }
    };
    this.emitter.on(topic, safe);
    return () => this.emitter.off(topic, safe);
  }
}

export type CredentialKind = 'runner_key' | 'token' | 'session' | 'user';

export const topics = {
  /** Anything about the execution changed: status, output, a cancel request. */
  execution: (id: string) => `execution:${id}`,
  /** The runner holding it must look: a cancel was requested, or it reached a final status. */
  stop: (id: string) => `stop:${id}`,
  project: (id: string) => `project:${id}`,
  /** Every project's wake-up (the listener gets `project:<id>`). */
  anyProject: 'project:*',
  /** Published when an event was raised: the notification deliverer looks at the outbox. */
  notifications: 'notifications',
  /** Published when a schedule was created or changed: schedulers look at their next due times. */
  schedules: 'schedules',
  /** Published when a credential stops being valid: every live connection that used it ends. */
  credential: (kind: CredentialKind, id: string) => `credential:${kind}:${id}`,
};

/** Resolves when the topic is published or after `ms`, whichever is first. */
export function waitForTopic(notifier: Notifier, topic: string, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let unsubscribe = () => {};
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    unsubscribe = notifier.subscribe(topic, done);
    signal?.addEventListener('abort', done);
  });
}
