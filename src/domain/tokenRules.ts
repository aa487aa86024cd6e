/** What a token's name and expiry may be (personal and CI tokens alike). Pure. */
import { UserError } from '../shared/errors.js';

/** Longest a token may live. */
const MAX_TOKEN_LIFETIME_MS = 5 * 365 * 24 * 3600 * 1000;
const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkTokenName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 100) throw new UserError('DC_VALIDATION', 'A token name needs 1 to 100 characters.', { field: 'name' });
  if (CONTROL.test(trimmed)) throw new UserError('DC_VALIDATION', 'A token name may not contain control characters.', { field: 'name' });
  return trimmed;
}

/** An expiry (unix ms) in the future and at most 5 years away; null: none. */
export function checkExpiry(now: number, expiresAt: number | null | undefined): number | null {
  if (expiresAt === undefined || expiresAt === null) return null;
  if (!Number.isFinite(expiresAt) || expiresAt <= now) throw new UserError('DC_VALIDATION', 'A token expiry must lie in the future.', { field: 'expires_at' });
  if (expiresAt - now > MAX_TOKEN_LIFETIME_MS) throw new UserError('DC_VALIDATION', 'A token may live at most 5 years.', { field: 'expires_at' });
  return expiresAt;
}

/** "30d", "12h", "90m", "2w" → milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,5})\s*([mhdw])$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}
