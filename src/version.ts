import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The package version, read once from package.json (two levels up from dist/src). */
export const VERSION: string = (() => {
  for (const p of ['../package.json', '../../package.json']) {
    try {
      return (require(p) as { version: string }).version;
    } catch {
      // try the next layout (source vs. compiled)
    }
  }
  return '0.0.0';
})();
