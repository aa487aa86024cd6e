/**
 * Light and dark: the system's choice (prefers-color-scheme) unless the person picked one with
 * the toggle, remembered in localStorage. Listeners (the terminal) repaint on a change.
 */
export type ThemeChoice = 'system' | 'light' | 'dark';
export type Theme = 'light' | 'dark';

const KEY = 'djangocommand.theme';
const listeners = new Set<(t: Theme) => void>();
const media = window.matchMedia('(prefers-color-scheme: dark)');

export function themeChoice(): ThemeChoice {
  const v = safeGet();
  return v === 'light' || v === 'dark' ? v : 'system';
}

export function currentTheme(): Theme {
  const c = themeChoice();
  if (c !== 'system') return c;
  return media.matches ? 'dark' : 'light';
}

export function setThemeChoice(choice: ThemeChoice): void {
  try {
    if (choice === 'system') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, choice);
  } catch {
    // Storage may be disabled (private mode): the choice then lasts for this page only.
  }
  applyTheme(choice);
}

export function onThemeChange(fn: (t: Theme) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function safeGet(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === 'system') root.removeAttribute('data-theme');
  else root.setAttribute('data-theme', choice);
  const t = currentTheme();
  root.style.colorScheme = t;
  for (const fn of listeners) fn(t);
}

export function initTheme(): void {
  applyTheme(themeChoice());
  media.addEventListener('change', () => {
    if (themeChoice() === 'system') applyTheme('system');
  });
}

/** The toggle cycles system → light → dark. */
export function nextChoice(c: ThemeChoice): ThemeChoice {
  return c === 'system' ? 'light' : c === 'light' ? 'dark' : 'system';
}
