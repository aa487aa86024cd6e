/** The rules of the audit chain (domain/auditChain.ts), without a database. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  auditSigningKey,
  canonicalJson,
  chainNext,
  ChainWalk,
  eventHash,
  GENESIS,
  GENESIS_HASH,
  signatureMatches,
  signCheckpoint,
  signVerification,
  type ChainAnchor,
  type ChainContent,
  type ChainedRow,
} from '../../src/domain/auditChain.js';
import { parseBefore } from '../../src/cli/auditCommands.js';

function content(i: number): ChainContent {
  return { at: i * 1000, actor_type: 'user', actor_id: 'u1', actor_label: 'ada', address: null, action: 'execution.create', project_id: null, execution_id: null, outcome: 'ok', details_json: JSON.stringify({ i }) };
}

function chain(n: number): ChainedRow[] {
  const rows: ChainedRow[] = [];
  let head: ChainAnchor = GENESIS;
  for (let i = 1; i <= n; i++) {
    const next = chainNext(content(i), head);
    rows.push({ ...content(i), id: i, seq: next.seq, prev_hash: next.prevHash, hash: next.hash });
    head = { seq: next.seq, hash: next.hash };
  }
  return rows;
}

function walk(rows: ChainedRow[], anchor: ChainAnchor = GENESIS, expectHead: ChainAnchor | null = null) {
  const w = new ChainWalk(anchor, expectHead);
  for (const r of rows) if (!w.push(r)) break;
  return w.finish();
}

describe('canonicalJson', () => {
  it('sorts keys at every level and leaves arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  });
  it('gives the same text whatever order keys were built in', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
    );
  });
  it('refuses what is not JSON', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(/not a JSON number/);
    expect(() => canonicalJson(() => 1)).toThrow(/not a JSON value/);
  });
});

describe('eventHash', () => {
  it('is the SHA-256 of the canonical content with seq and prev_hash (a fixed vector)', () => {
    const c = content(1);
    const expected = createHash('sha256').update(canonicalJson({ ...c, seq: 1, prev_hash: GENESIS_HASH })).digest('hex');
    expect(eventHash(c, 1, GENESIS_HASH)).toBe(expected);
    // Fixed: a change of the hashed form would make every stored chain fail to verify.
    expect(expected).toBe('d3312d42ecad192ab7948b1b632a2f2fc6ea972a0f8efbe0e183b0ed8d6eb989');
  });
  it('changes with any column, the position or the previous hash', () => {
    const base = eventHash(content(1), 1, GENESIS_HASH);
    for (const key of Object.keys(content(1)) as Array<keyof ChainContent>) {
      const changed = { ...content(1), [key]: key === 'at' ? 1 : 'other' };
      expect(eventHash(changed, 1, GENESIS_HASH), key).not.toBe(base);
    }
    expect(eventHash(content(1), 2, GENESIS_HASH)).not.toBe(base);
    expect(eventHash(content(1), 1, 'f'.repeat(64))).not.toBe(base);
    // null and "null" are not the same actor id
    expect(eventHash({ ...content(1), actor_id: null }, 1, GENESIS_HASH)).not.toBe(eventHash({ ...content(1), actor_id: 'null' }, 1, GENESIS_HASH));
  });
});

describe('ChainWalk', () => {
  it('passes a whole chain and reports its head', () => {
    const rows = chain(20);
    expect(walk(rows)).toMatchObject({ ok: true, events: 20, head: { seq: 20, hash: rows[19].hash } });
    expect(walk([])).toMatchObject({ ok: true, events: 0, head: GENESIS });
  });

  it('names the changed event', () => {
    const rows = chain(10);
    rows[3] = { ...rows[3], action: 'session.logout' };
    expect(walk(rows)).toMatchObject({ ok: false, problem: { kind: 'changed', seq: 4, id: 4 }, head: { seq: 3 } });
  });

  it('names an event whose hash was recomputed after the change', () => {
    const rows = chain(10);
    const forged = { ...rows[3], action: 'session.logout' };
    rows[3] = { ...forged, hash: eventHash(forged, 4, forged.prev_hash!) };
    expect(walk(rows).problem).toMatchObject({ kind: 'changed', seq: 4 });
  });

  it('names removed events (one, several, the first)', () => {
    const rows = chain(10);
    expect(walk(rows.filter((r) => r.seq !== 5)).problem).toMatchObject({ kind: 'removed', seq: 5 });
    expect(walk(rows.filter((r) => r.seq! < 3 || r.seq! > 6)).problem?.message).toContain('#3–#6 were removed');
    expect(walk(rows.slice(1)).problem).toMatchObject({ kind: 'removed', seq: 1 });
  });

  it('names an inserted event: duplicate position, renumbered followers, or no position', () => {
    const rows = chain(6);
    const dup = { ...rows[2], id: 99 };
    expect(walk([...rows.slice(0, 3), dup, ...rows.slice(3)]).problem).toMatchObject({ kind: 'inserted', seq: 3, id: 99 });
    const slipped = { ...content(99), id: 99, seq: 4, prev_hash: rows[2].hash, hash: eventHash(content(99), 4, rows[2].hash!) };
    const renumbered = rows.slice(3).map((r) => ({ ...r, seq: r.seq! + 1 }));
    expect(walk([...rows.slice(0, 3), slipped, ...renumbered]).problem).toMatchObject({ kind: 'inserted', seq: 4 });
    expect(walk([...rows.slice(0, 2), { ...rows[2], seq: null }]).problem).toMatchObject({ kind: 'inserted', seq: null });
  });

  it('starts from a checkpoint, and finds an event left before it', () => {
    const rows = chain(10);
    const anchor = { seq: 4, hash: rows[3].hash! };
    expect(walk(rows.slice(4), anchor)).toMatchObject({ ok: true, events: 6, head: { seq: 10 } });
    expect(walk(rows.slice(3), anchor).problem).toMatchObject({ kind: 'inserted', seq: 4 });
    expect(walk(rows.slice(4), { seq: 4, hash: 'e'.repeat(64) }).problem).toMatchObject({ kind: 'changed', seq: 5 });
  });

  it('finds events removed from the end, or a chain rewritten, against a head seen before', () => {
    const rows = chain(10);
    const seen = { seq: 8, hash: rows[7].hash! };
    expect(walk(rows, GENESIS, seen).ok).toBe(true);
    expect(walk(rows.slice(0, 6), GENESIS, seen).problem).toMatchObject({ kind: 'removed', seq: 7 });
    // Rewritten from #1 on with correct hashes: only the head seen before tells.
    let head: ChainAnchor = GENESIS;
    const rewritten = rows.map((r) => {
      const c = r.seq === 2 ? { ...r, actor_label: 'mallory' } : r;
      const next = chainNext(c, head);
      head = { seq: next.seq, hash: next.hash };
      return { ...c, prev_hash: next.prevHash, hash: next.hash };
    });
    expect(walk(rewritten).ok).toBe(true);
    expect(walk(rewritten, GENESIS, seen).problem).toMatchObject({ kind: 'changed', seq: 8 });
  });

  it('finds any single edit of any column of any event (property)', () => {
    const rows = chain(12);
    const columns: Array<keyof ChainedRow> = ['at', 'actor_type', 'actor_id', 'actor_label', 'address', 'action', 'project_id', 'execution_id', 'outcome', 'details_json', 'hash', 'prev_hash', 'seq'];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 11 }), fc.constantFrom(...columns), (i, column) => {
        const copy = rows.map((r) => ({ ...r }));
        const old = copy[i][column];
        (copy[i] as unknown as Record<string, unknown>)[column] = typeof old === 'number' ? old + 7 : `${old ?? ''}x`;
        const r = walk(copy);
        expect(r.ok).toBe(false);
        expect(r.problem!.seq === null || r.problem!.seq <= i + 2).toBe(true);
      }),
    );
  });
});

describe('signed anchors', () => {
  it('sign checkpoints and verification records; any change or another key fails', () => {
    const key = auditSigningKey(randomBytes(32));
    const cp = { seq: 10, hash: 'a'.repeat(64), firstSeq: 1, events: 10, at: 5, archiveSha256: 'b'.repeat(64) };
    const sig = signCheckpoint(key, cp);
    expect(signatureMatches(signCheckpoint(key, { ...cp }), sig)).toBe(true);
    expect(signatureMatches(signCheckpoint(key, { ...cp, seq: 11 }), sig)).toBe(false);
    expect(signatureMatches(signCheckpoint(auditSigningKey(randomBytes(32)), cp), sig)).toBe(false);
    const v = { at: 1, ok: true, events: 3, headSeq: 3, headHash: 'c'.repeat(64), problem: null };
    expect(signatureMatches(signVerification(key, { ...v, ok: false }), signVerification(key, v))).toBe(false);
    // A checkpoint's signature is not a verification's.
    expect(signatureMatches(signVerification(key, v), 'x')).toBe(false);
  });
});

describe('admin audit archive --before', () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  it('reads a date (UTC midnight), an ISO time or an age', () => {
    expect(parseBefore('2026-01-31', now)).toBe(Date.parse('2026-01-31T00:00:00Z'));
    expect(parseBefore('2026-01-31T12:30:00+02:00', now)).toBe(Date.parse('2026-01-31T10:30:00Z'));
    expect(parseBefore('365d', now)).toBe(now - 365 * 86_400_000);
    expect(parseBefore('2w', now)).toBe(now - 14 * 86_400_000);
  });
  it('refuses anything else, and the future, with DC_VALIDATION', () => {
    expect(() => parseBefore('yesterday', now)).toThrow(/is not a date/);
    expect(() => parseBefore('2026-13-45', now)).toThrow(/is not a date/);
    expect(() => parseBefore('2027-01-01', now)).toThrow(/in the future/);
  });
});
