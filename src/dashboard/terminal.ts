/**
 * The output terminal: xterm.js, read-only, following the tail while the person has not
 * scrolled up, 10 000 lines of scroll-back. stderr is shown in the theme's red, while the
 * output's own colours still apply inside it.
 */
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import type { OutputChunkView } from '../shared/api.js';
import { currentTheme, onThemeChange, type Theme } from './theme.js';

export const THEMES: Record<Theme, ITheme> = {
  light: {
    background: '#fbfbfa',
    foreground: '#1f2328',
    cursor: '#fbfbfa',
    cursorAccent: '#fbfbfa',
    selectionBackground: '#b6d6fd',
    black: '#1f2328',
    red: '#c4242b',
    green: '#1a7f37',
    yellow: '#8a6100',
    blue: '#0b5cc7',
    magenta: '#8250df',
    cyan: '#117a8b',
    white: '#6e7781',
    brightBlack: '#57606a',
    brightRed: '#d1242f',
    brightGreen: '#2da44e',
    brightYellow: '#9a6700',
    brightBlue: '#218bff',
    brightMagenta: '#a475f9',
    brightCyan: '#1b9aaa',
    brightWhite: '#8c959f',
  },
  dark: {
    background: '#0e1116',
    foreground: '#e6edf3',
    cursor: '#0e1116',
    cursorAccent: '#0e1116',
    selectionBackground: '#264f78',
    black: '#484f58',
    red: '#ff7b72',
    green: '#3fb950',
    yellow: '#d29922',
    blue: '#58a6ff',
    magenta: '#bc8cff',
    cyan: '#39c5cf',
    white: '#b1bac4',
    brightBlack: '#6e7681',
    brightRed: '#ffa198',
    brightGreen: '#56d364',
    brightYellow: '#e3b341',
    brightBlue: '#79c0ff',
    brightMagenta: '#d2a8ff',
    brightCyan: '#56d4dd',
    brightWhite: '#f0f6fc',
  },
};

const STDERR_ON = '\x1b[31m';
const STDERR_OFF = '\x1b[39m';
const SGR = /\x1b\[([\d;]*)m/g;

/** stderr in red: re-applied after the data's own resets, so only its own colours win. */
export function colourStderr(data: string): string {
  const coloured = data.replace(SGR, (m, params: string) => {
    const ps = params.split(';');
    return params === '' || ps.includes('0') || ps.includes('39') ? m + STDERR_ON : m;
  });
  return STDERR_ON + coloured + STDERR_OFF;
}

export const MONO_FONT = 'ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace';

export class OutputTerminal {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly stopTheme: () => void;
  private readonly resize: ResizeObserver;
  private pending = '';
  private flushing = false;
  /** Characters written, for tests and for the "nothing yet" hint. */
  written = 0;

  constructor(container: HTMLElement) {
    this.term = new Terminal({
      convertEol: true,
      scrollback: 10_000,
      disableStdin: true,
      cursorBlink: false,
      cursorStyle: 'bar',
      cursorInactiveStyle: 'none',
      fontFamily: MONO_FONT,
      fontSize: 13,
      lineHeight: 1.2,
      theme: THEMES[currentTheme()],
      allowProposedApi: false,
    });
    this.term.loadAddon(this.fit);
    this.term.open(container);
    // Tab and Escape leave the terminal, as anywhere else on the page: no keyboard trap.
    this.term.attachCustomKeyEventHandler((e) => !(e.key === 'Tab' || e.key === 'Escape'));
    this.term.textarea?.setAttribute('aria-label', 'Command output (read only)');
    this.stopTheme = onThemeChange((t) => (this.term.options.theme = THEMES[t]));
    this.resize = new ResizeObserver(() => this.refit());
    this.resize.observe(container);
    this.refit();
  }

  refit(): void {
    try {
      this.fit.fit();
    } catch {
      // Not laid out yet (hidden): the next resize fits it.
    }
  }

  /** Queues a chunk; writes are batched so a flood of small chunks does not stall the page. */
  write(chunk: Pick<OutputChunkView, 'stream' | 'data'>): void {
    this.pending += chunk.stream === 'stderr' ? colourStderr(chunk.data) : chunk.data;
    this.written += chunk.data.length;
    if (!this.flushing) this.flush();
  }

  writeNote(text: string): void {
    this.pending += `\x1b[2m${text}\x1b[22m\n`;
    if (!this.flushing) this.flush();
  }

  private flush(): void {
    if (!this.pending) {
      this.flushing = false;
      return;
    }
    this.flushing = true;
    const data = this.pending;
    this.pending = '';
    // xterm parses asynchronously; waiting for each batch keeps memory and the page responsive.
    this.term.write(data, () => this.flush());
  }

  /** Resolves when everything queued so far is on screen. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (this.flushing || this.pending ? setTimeout(check, 20) : resolve());
      check();
    });
  }

  /** The text on screen and in the scroll-back, for tests and copy. */
  text(): string {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) {
      const line = buf.getLine(i);
      if (!line) continue;
      // A wrapped line continues the previous one: join them back.
      if (line.isWrapped && lines.length) lines[lines.length - 1] += line.translateToString(false);
      else lines.push(line.translateToString(false));
    }
    return lines.map((l) => l.trimEnd()).join('\n').replace(/\n+$/, '');
  }

  scrollToBottom(): void {
    this.term.scrollToBottom();
  }

  dispose(): void {
    this.stopTheme();
    this.resize.disconnect();
    this.term.dispose();
  }
}

/** Output as plain text (for the "earlier output" viewer): ANSI escapes dropped. */
export function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]/g, '');
}
