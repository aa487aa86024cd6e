/**
 * Channel secrets at rest (webhook URLs, signing secrets, SMTP URLs with their password):
 * AES-256-GCM with the server key, bound to the channel's id (as associated data) so a sealed
 * value copied onto another row does not open. The key comes from DJANGOCOMMAND_SECRET_KEY, or is
 * generated once into `<data dir>/secret.key` (mode 0600). Replicas sharing a PostgreSQL database
 * must share DJANGOCOMMAND_SECRET_KEY: a value sealed with one key does not open with another.
 *
 * Sealed form: `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url); the key id (8 hex of the key's
 * SHA-256) lets the error say "sealed with another key" instead of "corrupt".
 */
import fs from 'node:fs';
import path from 'node:path';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { UserError } from '../../shared/errors.js';

export const SECRET_KEY_FILE = 'secret.key';

export class SecretBox {
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the secret key must be 32 bytes');
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', this.keyId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const [version, keyId, iv, tag, data] = sealed.split('.');
    if (version !== 'v1' || data === undefined) throw new Error('not a sealed secret');
    if (keyId !== this.keyId) {
      throw new UserError(
        'DC_CONFIG',
        `This channel's secrets were sealed with another server key (key id ${keyId}; this server's is ${this.keyId}). Give every server replica the same DJANGOCOMMAND_SECRET_KEY, or create the channel again.`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}

/** 32 bytes written as 64 hex digits or as base64 (standard or url-safe). */
export function parseSecretKey(text: string, where: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64url') : undefined;
  if (!key || key.length !== 32) {
    throw new UserError('DC_CONFIG', `${where} must be 32 random bytes as 64 hex digits or base64 (make one with: openssl rand -base64 32).`, undefined, { exitCode: 2 });
  }
  return key;
}

/** The configured key, or the one in `<data dir>/secret.key`, generated (0600) on first use. */
export function loadSecretKey(configured: string | undefined, dataDir: string): Buffer {
  if (configured) return parseSecretKey(configured, 'DJANGOCOMMAND_SECRET_KEY');
  const file = path.join(dataDir, SECRET_KEY_FILE);
  // Written whole under another name, then linked into place (atomic, never over an existing
  // key): two servers starting at once on one data folder both read the same, complete key.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(draft, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    fs.linkSync(draft, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot write ${file}`, { cause: err });
  } finally {
    fs.rmSync(draft, { force: true });
  }
  return parseSecretKey(fs.readFileSync(file, 'utf8'), file);
}
