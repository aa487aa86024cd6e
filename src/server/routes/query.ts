/** Parsing of query-string values shared by the list endpoints. */
import { UserError } from '../../shared/errors.js';

export const MAX_PAGE = 500;
const MAX_DATE_MS = 8.64e15;

export function parseLimit(value: string | undefined, fallback = 50): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) {
    throw new UserError('DC_VALIDATION', `limit must be a whole number from 1 to ${MAX_PAGE}.`, { field: 'limit' });
  }
  return n;
}

/**
 * A free-text filter: refused when it holds a control character (no name, action or id has one,
 * and PostgreSQL cannot even compare text with a NUL in it).
 */
export function parseText(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new UserError('DC_VALIDATION', `${field} may not contain control characters.`, { field });
  return value;
}

export function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  // Beyond what a Date can hold, a number would not fit the database's bigint either.
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) throw new UserError('DC_VALIDATION', `${field} must be an ISO 8601 time or unix milliseconds.`, { field });
  return ms;
}
