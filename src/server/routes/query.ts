/** Parsing of query-string values shared by the list endpoints. */
import { UserError } from '../../shared/errors.js';

export const MAX_PAGE = 500;

export function parseLimit(value: string | undefined, fallback = 50): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) {
    throw new UserError('DC_VALIDATION', `limit must be a whole number from 1 to ${MAX_PAGE}.`, 400, { field: 'limit' });
  }
  return n;
}

export function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new UserError('DC_VALIDATION', `${field} must be an ISO 8601 time or unix milliseconds.`, 400, { field });
  return ms;
}
