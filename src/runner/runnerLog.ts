/**
 * The runner's log: to stderr in the foreground; to <state>/runner.log when detached, rotated
 * at 10 MiB keeping three old files (runner.log.1 … .3), so a long-lived runner cannot fill a disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Log } from './runner.js';

const MAX_BYTES = 10 * 1024 * 1024;
const KEEP = 3;

export function consoleLog(): Log {
  return (level, message) => process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}\n`);
}

export function logFile(stateDir: string): string {
  return path.join(stateDir, 'runner.log');
}

export function rotatingFileLog(stateDir: string): Log {
  const file = logFile(stateDir);
  let size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  return (level, message) => {
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}\n`;
    try {
      if (size + line.length > MAX_BYTES) {
        for (let i = KEEP - 1; i >= 1; i--) if (fs.existsSync(`${file}.${i}`)) fs.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
        if (fs.existsSync(file)) fs.renameSync(file, `${file}.1`);
        size = 0;
      }
      fs.appendFileSync(file, line, { mode: 0o600 });
      size += Buffer.byteLength(line);
    } catch {
      // Logging must never stop the runner.
    }
  };
}
