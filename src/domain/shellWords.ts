/**
 * POSIX shell word splitting and quoting, compatible with Python's `shlex.split` and
 * `shlex.join`. v1 runners receive arguments as one string and split it with shlex; v2 and the
 * REST API work with argv lists. These two functions convert between the forms without loss.
 */
import { UserError } from '../shared/errors.js';

export function splitShellWords(input: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < input.length) {
    const ch = input[i];
    if (ch === "'") {
      const end = input.indexOf("'", i + 1);
      if (end < 0) throw new UserError('DC_BAD_ARGS', 'Arguments have an unclosed single quote.');
      word += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      let closed = false;
      while (i < input.length) {
        const c = input[i];
        if (c === '"') { closed = true; i++; break; }
        // Like shlex in POSIX mode: inside double quotes a backslash escapes only " and \.
        if (c === '\\' && i + 1 < input.length && (input[i + 1] === '"' || input[i + 1] === '\\')) {
          word += input[i + 1];
          i += 2;
          continue;
        }
        word += c;
        i++;
      }
      if (!closed) throw new UserError('DC_BAD_ARGS', 'Arguments have an unclosed double quote.');
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 >= input.length) throw new UserError('DC_BAD_ARGS', 'Arguments end with a lone backslash.');
      word += input[i + 1];
      inWord = true;
      i += 2;
    } else if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const SAFE_WORD = /^[\w@%+=:,./-]+$/;

export function quoteShellWord(word: string): string {
  if (word === '') return "''";
  if (SAFE_WORD.test(word)) return word;
  return "'" + word.replace(/'/g, `'"'"'`) + "'";
}

export function joinShellWords(words: readonly string[]): string {
  return words.map(quoteShellWord).join(' ');
}
