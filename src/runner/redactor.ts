/**
 * Scrubbing secrets from a command's output on the runner, before it leaves the host.
 *
 * Two stages per output stream, each giving the same text however the output was split into
 * reads (a secret printed in two writes, or cut by a pipe buffer, is still found):
 * 1. Secret values (Django settings that look secret) become `[redacted:NAME]`. At the end of
 *    what arrived, only text that could still be the start of a secret is held back; all other
 *    output goes on at once, so live output is not delayed (a held piece goes out as soon as the
 *    next read shows it is not a secret, or when the command ends).
 * 2. Patterns (DJANGOCOMMAND_REDACT_PATTERNS, regular expressions) are applied to whole lines and
 *    become `[redacted:pattern N]` (N counts from 1 in the setting's order). With patterns, an
 *    unfinished line is held until its newline, until it reaches LINE_LIMIT characters, or until
 *    the command ends. Without patterns nothing is held for them.
 */
import { UserError } from '../shared/errors.js';

/** Shorter values are not treated as secrets (too many false matches in ordinary output). */
export const MIN_SECRET_LENGTH = 8;
/** A line longer than this is scrubbed in pieces of this size (a pattern cannot span pieces). */
export const LINE_LIMIT = 64 * 1024;

export interface Secret {
  /** The setting's name, e.g. SECRET_KEY or DATABASES.default.PASSWORD: shown in the marker. */
  name: string;
  value: string;
}

export interface RedactionRules {
  secrets: readonly Secret[];
  patterns: readonly RegExp[];
}

export const NO_REDACTION: RedactionRules = { secrets: [], patterns: [] };

/**
 * The rules from what bootstrap.py found and the configured patterns. A value is kept once
 * (under its first name); a pattern that does not compile, or that matches empty text, is a
 * configuration error naming it (never its matches).
 */
export function redactionRules(secrets: readonly Secret[], patterns: readonly string[]): RedactionRules {
  const seen = new Set<string>();
  const kept: Secret[] = [];
  for (const s of secrets) {
    if (typeof s?.value !== 'string' || typeof s.name !== 'string' || s.value.length < MIN_SECRET_LENGTH || seen.has(s.value)) continue;
    seen.add(s.value);
    kept.push({ name: s.name.replace(/[^\w.\-]/g, '_').slice(0, 100), value: s.value });
  }
  const compiled = patterns.map((source, i) => {
    let text = source;
    let flags = 'g';
    // Python's inline flag at the start, as people write it in Django settings.
    const inline = /^\(\?([ims]+)\)/.exec(text);
    if (inline) {
      flags += [...new Set(inline[1])].join('');
      text = text.slice(inline[0].length);
    }
    let re: RegExp;
    try {
      re = new RegExp(text, flags);
    } catch (err) {
      throw new UserError('DC_CONFIG', `DJANGOCOMMAND_REDACT_PATTERNS pattern ${i + 1} is not a regular expression: ${(err as Error).message}`, undefined, { exitCode: 2 });
    }
    if (new RegExp(text, flags.replace('g', '')).test('')) {
      throw new UserError('DC_CONFIG', `DJANGOCOMMAND_REDACT_PATTERNS pattern ${i + 1} matches empty text; it must match the secret itself (e.g. "sk_live_[A-Za-z0-9]+").`, undefined, { exitCode: 2 });
    }
    return re;
  });
  return { secrets: kept, patterns: compiled };
}

export function hasRules(rules: RedactionRules | undefined): rules is RedactionRules {
  return !!rules && (rules.secrets.length > 0 || rules.patterns.length > 0);
}

/** Stage 1: secret values, with the least text held back. */
class SecretScanner {
  private held = '';
  private readonly names = new Map<string, string>();
  private readonly all: RegExp | null;
  private readonly byFirst = new Map<string, string[]>();
  private readonly longest: number;

  constructor(secrets: readonly Secret[]) {
    const values = [...secrets].sort((a, b) => b.value.length - a.value.length);
    for (const s of values) {
      this.names.set(s.value, s.name);
      const list = this.byFirst.get(s.value[0]) ?? [];
      list.push(s.value);
      this.byFirst.set(s.value[0], list);
    }
    // Longest first: where two secrets start at one place, the longer one is the match.
    this.all = values.length ? new RegExp(values.map((s) => s.value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : null;
    this.longest = values.length ? values[0].value.length : 0;
  }

  push(text: string): string {
    const buf = this.held + text;
    this.held = '';
    return this.scan(buf, false);
  }

  end(): string {
    const buf = this.held;
    this.held = '';
    return this.scan(buf, true);
  }

  private scan(buf: string, final: boolean): string {
    if (!this.all) return buf;
    const partials = final ? [] : this.partialStarts(buf);
    let out = '';
    let i = 0;
    for (;;) {
      const hold = partials.find((p) => p >= i) ?? buf.length;
      this.all.lastIndex = i;
      const m = this.all.exec(buf);
      if (m && m.index < hold) {
        out += buf.slice(i, m.index) + `[redacted:${this.names.get(m[0])}]`;
        i = m.index + m[0].length;
        continue;
      }
      out += buf.slice(i, hold);
      this.held = buf.slice(hold);
      return out;
    }
  }

  /** Positions from which the rest of `buf` is a proper start of some secret (ascending). */
  private partialStarts(buf: string): number[] {
    const found: number[] = [];
    for (let p = Math.max(0, buf.length - this.longest + 1); p < buf.length; p++) {
      const rest = buf.length - p;
      const candidates = this.byFirst.get(buf[p]);
      if (candidates?.some((s) => s.length > rest && buf.startsWith(s.slice(0, rest), p))) found.push(p);
    }
    return found;
  }
}

/** Stage 2: patterns, line by line. */
class LineScrubber {
  private held = '';

  constructor(private readonly patterns: readonly RegExp[]) {}

  push(text: string): string {
    if (this.patterns.length === 0) return text;
    const buf = this.held + text;
    let out = '';
    let start = 0;
    for (;;) {
      const nl = buf.indexOf('\n', start);
      let cut: number;
      if (nl >= 0 && nl - start < LINE_LIMIT) cut = nl + 1;
      else if (buf.length - start >= LINE_LIMIT) {
        cut = start + LINE_LIMIT;
        // Never between the two halves of a character outside the BMP.
        if (/[\uD800-\uDBFF]/.test(buf[cut - 1])) cut--;
      } else break;
      out += this.scrub(buf.slice(start, cut));
      start = cut;
    }
    this.held = buf.slice(start);
    return out;
  }

  end(): string {
    const rest = this.held;
    this.held = '';
    return rest ? this.scrub(rest) : '';
  }

  private scrub(line: string): string {
    let text = line;
    this.patterns.forEach((re, i) => {
      re.lastIndex = 0;
      text = text.replace(re, `[redacted:pattern ${i + 1}]`);
    });
    return text;
  }
}

/** One output stream's scrubber: text in as it is read, scrubbed text out (possibly less, held). */
export class StreamRedactor {
  private readonly secrets: SecretScanner;
  private readonly lines: LineScrubber;

  constructor(rules: RedactionRules) {
    this.secrets = new SecretScanner(rules.secrets);
    this.lines = new LineScrubber(rules.patterns);
  }

  push(text: string): string {
    return this.lines.push(this.secrets.push(text));
  }

  /** The command ended: everything held, scrubbed. */
  end(): string {
    return this.lines.push(this.secrets.end()) + this.lines.end();
  }
}

/** The whole text scrubbed at once (what the pieces of a stream add up to). */
export function redactText(rules: RedactionRules, text: string): string {
  const r = new StreamRedactor(rules);
  return r.push(text) + r.end();
}
