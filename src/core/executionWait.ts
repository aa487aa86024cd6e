/** Waiting for an execution to end, for callers that answer synchronously (the `wait` parameter, /__manage__/). */
import type { Execution, OutputChunk } from '../domain/model.js';
import { isTerminal } from '../domain/execution.js';
import type { Core } from './context.js';
import { topics, waitForTopic } from './notifier.js';

/** The execution once it has ended, or as it is when `ms` have passed (or `signal` aborts). */
export async function waitForEnd(core: Core, id: string, ms: number, signal?: AbortSignal): Promise<Execution | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = await core.store.getExecution(id);
    if (!e || isTerminal(e.status) || Date.now() >= deadline || signal?.aborted) return e;
    // A wake-up from this or another replica; a second's poll covers a lost one.
    await waitForTopic(core.notifier, topics.execution(id), Math.min(1000, deadline - Date.now()), signal);
  }
}

/** The last `lines` lines of an execution's output (stdout and stderr as they came), at most `maxChars`. */
export async function outputTail(core: Core, e: Execution, lines = 20, maxChars = 16 * 1024): Promise<string> {
  const chunks: OutputChunk[] = [];
  let chars = 0;
  // Chunks are numbered; read backwards from the last until enough text is in hand.
  for (let seq = e.outputLastSeq; seq > 0 && chars < maxChars; seq -= 4) {
    const some = await core.store.readOutput(e.id, Math.max(0, seq - 4), Math.min(4, seq));
    chunks.unshift(...some);
    chars += some.reduce((n, c) => n + Math.min(c.data.length, maxChars), 0);
  }
  const text = chunks.map((c) => (c.data.length > maxChars ? c.data.slice(-maxChars) : c.data)).join('').slice(-maxChars);
  return text.split('\n').slice(-(lines + 1)).join('\n');
}
