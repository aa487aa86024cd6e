/** Shared set-up of the schedule tests: commands with an argparse schema, a runner's refusal, an event recorder. */
import type { TestApp } from '../support/inProcess.js';
import type { NewNotificationEvent } from '../../src/store/notificationStore.js';

export const CLEAR_SCHEMA = {
  arguments: [{ dest: 'days', option_strings: ['--days'], kind: 'store', nargs: null, type: 'int', choices: null, required: false, default: null, help: '' }],
  groups: [],
  subcommands: null,
};

/** shop reports clearsessions (with a schema), migrate, and flush refused by its runner's policy. */
export async function reportCommands(t: TestApp, refuse: string[] = ['flush']): Promise<void> {
  const names = ['clearsessions', 'migrate', 'flush', 'check'];
  await t.core.store.replaceCommands(
    t.projects.shop.id,
    names.map((name) => ({
      projectId: t.projects.shop.id,
      name,
      appLabel: 'demo',
      helpText: `usage: manage.py ${name}`,
      schema: name === 'clearsessions' ? CLEAR_SCHEMA : null,
      refused: refuse.includes(name) ? `"${name}" is not in DJANGOCOMMAND_ALLOWED_COMMANDS` : null,
      maxConcurrency: null,
      syncedAt: t.clock.now,
    })),
    'h-' + refuse.join(','),
  );
}

/** Records every raised event (they still go to the outbox). */
export function recordEvents(t: TestApp): NewNotificationEvent[] {
  const events: NewNotificationEvent[] = [];
  const store = t.core.store.notifications;
  const original = store.recordEvent.bind(store);
  store.recordEvent = (async (e: NewNotificationEvent) => {
    events.push(e);
    return original(e);
  }) as typeof store.recordEvent;
  return events;
}
