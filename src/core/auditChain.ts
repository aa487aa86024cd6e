/**
 * Use cases of the tamper-evident audit log (rules in domain/auditChain.ts): verifying the whole
 * chain in batches (memory stays flat however long the log is) and archiving a prefix of old
 * events behind a checkpoint signed with the server's secret key.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import {
  auditSigningKey,
  ChainWalk,
  GENESIS,
  signatureMatches,
  signCheckpoint,
  signVerification,
  type ChainAnchor,
  type ChainedRow,
  type ChainProblem,
  type WalkResult,
} from '../domain/auditChain.js';
import { UserError } from '../shared/errors.js';
import { audit, type AuditInput } from './audit.js';
import type { Actor } from '../domain/model.js';
import type { Core } from './context.js';

const BATCH = 2000;

export interface VerifyReport {
  ok: boolean;
  /** Events checked. */
  events: number;
  /** Where the chain starts: the start of the log, or the newest checkpoint. */
  anchor: ChainAnchor & { checkpoint: boolean };
  /** The last event that chained. */
  head: ChainAnchor;
  problem: ChainProblem | null;
  verifiedAt: number;
}

/** Checks the chain from its anchor to its head, records the result (signed) and returns it. */
export async function verifyAuditChain(core: Core, serverKey: Buffer): Promise<VerifyReport> {
  const key = auditSigningKey(serverKey);
  const chain = core.store.auditChain;
  const verifiedAt = core.now();
  let problem: ChainProblem | null = null;

  const cp = await chain.latestCheckpoint();
  if (cp && !signatureMatches(signCheckpoint(key, cp), cp.signature)) {
    problem = {
      kind: 'checkpoint',
      seq: cp.seq,
      id: null,
      message: `the checkpoint at #${cp.seq} is not signed with this server's key: it was changed or forged (or this server's DJANGOCOMMAND_SECRET_KEY is not the one that archived).`,
    };
  }
  const anchor: ChainAnchor = cp ? { seq: cp.seq, hash: cp.hash } : GENESIS;

  const seen = await chain.latestGoodVerification();
  if (!problem && seen && !signatureMatches(signVerification(key, seen), seen.signature)) {
    problem = { kind: 'verification', seq: null, id: null, message: `the record of the verification made at ${new Date(seen.at).toISOString()} is not signed with this server's key: it was changed or forged.` };
  }
  const expectHead = seen && seen.headSeq > anchor.seq ? { seq: seen.headSeq, hash: seen.headHash } : null;

  const walk = new ChainWalk(anchor, expectHead);
  let result: WalkResult = { ok: false, events: 0, head: anchor, problem };
  if (!problem) {
    // From the lowest seq there is: an event left at or before the checkpoint is found too.
    let after = Number.MIN_SAFE_INTEGER;
    for (;;) {
      const rows: ChainedRow[] = await chain.readChain(after, BATCH);
      let going = true;
      for (const row of rows) if (!(going = walk.push(row))) break;
      if (!going || rows.length < BATCH) break;
      after = rows[rows.length - 1].seq!;
    }
    result = walk.finish();
    problem = result.problem;
    if (!problem) {
      const stray = await chain.firstUnchained();
      if (stray) problem = { kind: 'inserted', seq: null, id: stray.id, message: `the event with id ${stray.id} (${stray.action} at ${new Date(stray.at).toISOString()}) has no place in the chain: it was inserted around the audit log.` };
    }
  }

  const ok = problem === null;
  const record = { at: verifiedAt, ok, events: result.events, headSeq: result.head.seq, headHash: result.head.hash, problem: problem?.message ?? null };
  await chain.recordVerification({ ...record, signature: signVerification(key, record) });
  return { ok, events: result.events, anchor: { ...anchor, checkpoint: cp !== undefined }, head: result.head, problem, verifiedAt };
}

export interface ArchiveReport {
  /** Events exported and removed (0: none was older than the date). */
  events: number;
  firstSeq: number;
  throughSeq: number;
  file: string | null;
  archiveSha256: string | null;
}

/**
 * Exports the longest prefix of events all written before `before` to `file` (JSON lines, the
 * stored columns, so their hashes can be recomputed), then removes exactly that prefix and
 * leaves a signed checkpoint. Refuses on a broken chain: archiving must not wipe evidence.
 */
export async function archiveAudit(core: Core, actor: Actor, serverKey: Buffer, opts: { before: number; file: string }): Promise<ArchiveReport> {
  const report = await verifyAuditChain(core, serverKey);
  if (!report.ok) {
    throw new UserError('DC_AUDIT_CHAIN_BROKEN', `The audit chain is not whole, so nothing was archived: ${report.problem?.message}`, undefined, { exitCode: 3 });
  }
  const chain = core.store.auditChain;
  const anchor: ChainAnchor = report.anchor;
  const through = await chain.prefixBefore(opts.before, anchor.seq);
  if (through <= anchor.seq) return { events: 0, firstSeq: anchor.seq + 1, throughSeq: anchor.seq, file: null, archiveSha256: null };

  let fd: number;
  try {
    fd = fs.openSync(opts.file, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError('DC_ARCHIVE_EXISTS', `${opts.file} exists already: archive to a new file (nothing was removed).`, undefined, { exitCode: 2 });
    throw new UserError('DC_CONFIG', `Cannot create ${opts.file}: ${(err as Error).message}`, undefined, { exitCode: 2 });
  }
  const digest = createHash('sha256');
  let events = 0;
  let lastHash = anchor.hash;
  try {
    for (let after = anchor.seq; after < through; ) {
      const rows = (await chain.readChain(after, BATCH)).filter((r) => r.seq! <= through);
      if (rows.length === 0) break;
      const text = rows.map((r) => JSON.stringify(r) + '\n').join('');
      fs.writeSync(fd, text);
      digest.update(text, 'utf8');
      events += rows.length;
      after = rows[rows.length - 1].seq!;
      lastHash = rows[rows.length - 1].hash!;
    }
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(opts.file, { force: true });
    throw new Error(`cannot write the audit archive ${opts.file}`, { cause: err });
  }
  fs.closeSync(fd);
  if (events !== through - anchor.seq) {
    fs.rmSync(opts.file, { force: true });
    throw new UserError('DC_AUDIT_CHAIN_BROKEN', `Events #${anchor.seq + 1}–#${through} should be ${through - anchor.seq} events, but ${events} were read; nothing was removed.`, undefined, { exitCode: 3 });
  }

  const archiveSha256 = digest.digest('hex');
  const checkpoint = { seq: through, hash: lastHash, firstSeq: anchor.seq + 1, events, at: core.now(), archiveSha256 };
  await chain.removePrefix(through, events, lastHash, { ...checkpoint, signature: signCheckpoint(auditSigningKey(serverKey), checkpoint) });
  const input: AuditInput = {
    action: 'audit.archive',
    details: { before: new Date(opts.before).toISOString(), first_seq: checkpoint.firstSeq, through_seq: through, events, archive_sha256: archiveSha256, file: opts.file },
  };
  await audit(core, actor, input);
  return { events, firstSeq: checkpoint.firstSeq, throughSeq: through, file: opts.file, archiveSha256 };
}

/** The latest verification, for the dashboard: when, and what it found. */
export async function lastVerification(core: Core): Promise<{ at: number; ok: boolean; events: number; headSeq: number; problem: string | null } | null> {
  const v = await core.store.auditChain.latestVerification();
  return v ? { at: v.at, ok: v.ok, events: v.events, headSeq: v.headSeq, problem: v.problem } : null;
}
