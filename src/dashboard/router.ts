/**
 * Hash routing (`#/projects/shop`, `#/executions/ID`, `#/history?command=migrate`): the server
 * only ever serves index.html, and a link is an ordinary `<a href="#/...">` that works with the
 * keyboard, middle-click and the back button.
 *
 * Each page gets an AbortSignal that fires when the person navigates away: pages hang their
 * timers, live streams and pending requests on it.
 */
export interface Route {
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  signal: AbortSignal;
}

export type Page = (main: HTMLElement, route: Route) => Promise<void> | void;

interface Entry {
  pattern: RegExp;
  names: string[];
  page: Page;
}

export class Router {
  private readonly entries: Entry[] = [];
  private current: AbortController | null = null;

  constructor(
    private readonly render: (page: Page, route: Route) => Promise<void>,
    private readonly notFound: Page,
  ) {}

  /** `add('/projects/:project', page)`. */
  add(path: string, page: Page): this {
    const names: string[] = [];
    const source = path.replace(/:(\w+)/g, (_m, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    this.entries.push({ pattern: new RegExp(`^${source}$`), names, page });
    return this;
  }

  start(): void {
    window.addEventListener('hashchange', () => void this.resolve());
    void this.resolve();
  }

  /** Stops the current page: its timers, streams and pending requests (before signing out, say). */
  leave(): void {
    this.current?.abort();
    this.current = null;
  }

  /** Renders the current location again (after signing in, say). */
  async resolve(): Promise<void> {
    this.current?.abort();
    const controller = new AbortController();
    this.current = controller;
    const { path, query } = parseHash(location.hash);
    for (const e of this.entries) {
      const m = e.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      e.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
      await this.render(e.page, { path, params, query, signal: controller.signal });
      return;
    }
    await this.render(this.notFound, { path, params: {}, query, signal: controller.signal });
  }
}

export function parseHash(hash: string): { path: string; query: URLSearchParams } {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  return { path: path || '/', query: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
}

/** A `#/...` link target with a query string (empty values left out). */
export function href(path: string, query: Record<string, string | number | null | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return `#${path}${qs ? `?${qs}` : ''}`;
}

export function navigate(target: string): void {
  const next = target.startsWith('#') ? target : `#${target}`;
  if (location.hash === next) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = next;
}

/** Changes the query of the current page without adding history entries for every keystroke. */
export function replaceQuery(path: string, query: Record<string, string | number | null | undefined>): void {
  history.replaceState(null, '', href(path, query));
}

export const projectPath = (p: string) => `/projects/${encodeURIComponent(p)}`;
export const commandPath = (p: string, c: string) => `/projects/${encodeURIComponent(p)}/commands/${encodeURIComponent(c)}`;
export const executionPath = (id: string) => `/executions/${encodeURIComponent(id)}`;
