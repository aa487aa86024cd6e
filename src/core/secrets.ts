/**
 * Secrets: runner API keys (`dc_...`), personal API tokens (`dct_...`) and passwords.
 * Keys and tokens are 256-bit random strings, so a plain SHA-256 is a safe way to store them
 * and allows lookup by hash; passwords are low-entropy, so they get scrypt with a salt.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: { N: number; r: number; p: number }) => Promise<Buffer>;

export const RUNNER_KEY_PREFIX = 'dc_';
export const USER_TOKEN_PREFIX = 'dct_';

export interface NewSecret {
  /** Shown once, never stored. */
  secret: string;
  /** Stored: finds the secret again, useless to an attacker. */
  hash: string;
  /** Stored and shown in lists so a person can tell keys apart. */
  prefix: string;
}

export function newRunnerKey(): NewSecret {
  return newSecret(RUNNER_KEY_PREFIX);
}

export function newUserToken(): NewSecret {
  return newSecret(USER_TOKEN_PREFIX);
}

function newSecret(kind: string): NewSecret {
  const secret = kind + randomBytes(32).toString('base64url');
  return { secret, hash: hashSecret(secret), prefix: secret.slice(0, kind.length + 8) };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function newPassword(): string {
  return randomBytes(18).toString('base64url');
}

const SCRYPT = { N: 16384, r: 8, p: 1 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, saltText, keyText] = stored.split('$');
  if (scheme !== 'scrypt' || !saltText || !keyText) return false;
  const expected = Buffer.from(keyText, 'base64url');
  const actual = await scrypt(password, Buffer.from(saltText, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
