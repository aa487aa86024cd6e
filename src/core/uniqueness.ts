/**
 * Unique names under concurrency: checking first is a courtesy, the database's unique constraint
 * is the judge. When an insert fails and the name turns out to be taken, that is the user's
 * conflict (409), not a server error.
 */
import type { UserError } from '../shared/errors.js';

export async function insertUnlessTaken(insert: () => Promise<void>, taken: () => Promise<boolean>, conflict: UserError): Promise<void> {
  try {
    await insert();
  } catch (err) {
    if (await taken().catch(() => false)) throw conflict;
    throw new Error('insert failed', { cause: err });
  }
}
