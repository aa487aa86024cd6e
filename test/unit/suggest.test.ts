import { describe, expect, it } from 'vitest';
import { closestNames, editDistance } from '../../src/domain/suggest.js';

describe('did you mean', () => {
  it('counts edits, a swap of neighbours as one', () => {
    expect(editDistance('chekc', 'check')).toBe(1);
    expect(editDistance('migrat', 'migrate')).toBe(1);
    expect(editDistance('abc', 'xyz')).toBe(3);
  });

  it('suggests the closest known commands, and nothing for a name far from all', () => {
    const known = ['check', 'migrate', 'showmigrations', 'makemigrations', 'clearsessions', 'collectstatic'];
    expect(closestNames('chekc', known)).toEqual(['check']);
    expect(closestNames('migrat', known)).toEqual(['migrate']);
    expect(closestNames('show', known)).toEqual(['showmigrations']);
    expect(closestNames('frobnicate', known)).toEqual([]);
  });
});
