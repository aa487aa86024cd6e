/**
 * The dashboard: sign in, then projects, command catalogue (a form made from each command's
 * argparse definition), the live run view, history, audit log and settings. Bundled by
 * scripts/build-dashboard.mjs into dist/dashboard/, which the server serves at `/`.
 */
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { api, whenRefused, whenUnauthenticated, type ApiError } from './api.js';
import { h, replace } from './dom.js';
import { href, navigate, Router, type Page, type Route } from './router.js';
import { adopt, isOwner, loadRoles, loadSession, mustChangePassword, passwordChangeRequired, rolesLoaded, signedInUser } from './session.js';
import { initTheme, nextChoice, setThemeChoice, themeChoice } from './theme.js';
import { errorNotice, notice, pageTitle } from './ui.js';
import { loginPage } from './pages/login.js';
import { projectsPage } from './pages/projects.js';
import { cataloguePage } from './pages/catalogue.js';
import { runPage } from './pages/run.js';
import { historyPage } from './pages/history.js';
import { auditPage } from './pages/audit.js';
import { settingsPage } from './pages/settings.js';
import { schedulesPage } from './pages/schedules.js';
import { schedulePage } from './pages/schedule.js';
import { scheduleFormPage } from './pages/scheduleForm.js';
import { notificationsPage } from './pages/notifications.js';
import { shellsPage } from './pages/shells.js';
import { shellPage } from './pages/shell.js';
import { passwordPage } from './pages/password.js';
import { membersPage } from './pages/members.js';

const NAV: Array<{ label: string; path: string; match: RegExp }> = [
  { label: 'Projects', path: '/', match: /^\/($|projects)/ },
  { label: 'Schedules', path: '/schedules', match: /^\/schedules/ },
  { label: 'History', path: '/history', match: /^\/(history|executions)/ },
  { label: 'Shells', path: '/shells', match: /^\/shells/ },
  { label: 'Audit log', path: '/audit', match: /^\/audit/ },
  { label: 'Notifications', path: '/notifications', match: /^\/notifications/ },
  { label: 'Settings', path: '/settings', match: /^\/settings/ },
];

const root = document.getElementById('app') ?? document.body.appendChild(h('div', { id: 'app' }));
let returnTo = '';
/** The refusal that showed the caller's roles had changed: said again on the page drawn for the new roles. */
let roleChange: ApiError | null = null;

function themeButton(): HTMLButtonElement {
  const labels = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' } as const;
  const b = h('button', { type: 'button', class: 'button button-plain theme-toggle', 'data-testid': 'theme-toggle' });
  const icons = { system: '◐', light: '☀', dark: '☾' } as const;
  const paint = () => {
    const c = themeChoice();
    b.replaceChildren(h('span', { class: 'theme-icon', 'aria-hidden': 'true' }, icons[c]), h('span', { class: 'theme-label' }, labels[c]));
    b.setAttribute('aria-label', `${labels[c]} (switch between system, light and dark)`);
    b.title = 'Switch between the system theme, light and dark';
  };
  b.addEventListener('click', () => {
    setThemeChoice(nextChoice(themeChoice()));
    paint();
  });
  paint();
  return b;
}

async function signOut(): Promise<void> {
  // The page's refreshes must not reach the server after the session is gone.
  router.leave();
  try {
    await api.signOut();
  } catch {
    // Signed out or not, the page forgets the session.
  }
  adopt(null);
  navigate('/login');
}

function shell(route: Route): HTMLElement {
  const user = signedInUser()!;
  const main = h('main', { id: 'main', class: 'main' });
  const signOutButton = h('button', { type: 'button', class: 'button button-plain', onClick: () => void signOut() }, 'Sign out');
  root.replaceChildren(
    h('a', { class: 'skip-link', href: '#main', onClick: (e: MouseEvent) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h(
      'header',
      { class: 'topbar' },
      h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '▸'), 'djangocommand'),
      h(
        'nav',
        { class: 'nav', 'aria-label': 'Main' },
        NAV.map((n) => h('a', { href: href(n.path), class: 'nav-link', 'aria-current': n.match.test(route.path) ? 'page' : null }, n.label)),
      ),
      h('div', { class: 'topbar-user' }, h('span', { class: 'user-email', title: isOwner() ? 'owner' : 'user' }, user.email), themeButton(), signOutButton),
    ),
    main,
  );
  main.tabIndex = -1;
  return main;
}

const notFound: Page = (main, route) => {
  replace(main, pageTitle('Not found'), h('p', null, `There is no page at ${route.path}. `, h('a', { href: '#/' }, 'Go to the projects.')));
};

async function render(page: Page, route: Route): Promise<void> {
  if (route.path === '/login') {
    if (signedInUser()) return navigate(returnTo || '/');
    root.replaceChildren();
    await loginPage(root, route, (target) => {
      const next = returnTo || target;
      returnTo = '';
      navigate(next || '/');
    });
    return;
  }
  if (!signedInUser() && !(await loadSession())) {
    returnTo = location.hash.replace(/^#/, '');
    navigate('/login');
    return;
  }
  if (!rolesLoaded()) await loadRoles();
  // A one-time password: nothing else until the person has set their own.
  if (mustChangePassword()) {
    if (route.path !== '/password') {
      if (!returnTo) returnTo = location.hash.replace(/^#/, '');
      return navigate('/password');
    }
    passwordPage(root, () => {
      const next = returnTo && returnTo !== '/password' ? returnTo : '/';
      returnTo = '';
      navigate(next);
    }, () => void signOut());
    return;
  }
  if (route.path === '/password') return navigate('/');
  const main = shell(route);
  const refused = roleChange;
  roleChange = null;
  try {
    await page(main, route);
  } catch (err) {
    if (route.signal.aborted) return;
    main.append(errorNotice(err));
  }
  if (refused && !route.signal.aborted) {
    main.prepend(h('div', { 'data-testid': 'roles-changed' }, notice('warning', 'Your roles changed: this page now shows what you may do.'), errorNotice(refused)));
  }
  if (route.signal.aborted) return;
  const title = main.querySelector<HTMLElement>('#page-title');
  // Move focus for keyboard users, but leave it where a page put it on purpose (a search box).
  if (title && (document.activeElement === document.body || document.activeElement === null)) title.focus({ preventScroll: true });
}

initTheme();
whenUnauthenticated(() => {
  if (!signedInUser()) return;
  adopt(null);
  returnTo = location.hash.replace(/^#/, '');
  navigate('/login');
});
whenRefused((err) => {
  if (!signedInUser()) return;
  if (err.code === 'DC_PASSWORD_CHANGE_REQUIRED') {
    passwordChangeRequired();
    router.leave();
    returnTo = location.hash.replace(/^#/, '');
    navigate('/password');
    return;
  }
  // The role may have changed: ask again, and show the page as the new role sees it.
  void loadRoles().then((changed) => {
    if (!changed) return;
    roleChange = err;
    void router.resolve();
  });
});

const router = new Router(render, notFound)
  .add('/login', () => undefined)
  .add('/password', () => undefined)
  .add('/', projectsPage)
  .add('/projects', projectsPage)
  .add('/projects/:project', cataloguePage)
  .add('/projects/:project/commands/:command', cataloguePage)
  .add('/projects/:project/members', membersPage)
  .add('/executions/:id', runPage)
  .add('/history', historyPage)
  .add('/audit', auditPage)
  .add('/settings', settingsPage)
  .add('/schedules', schedulesPage)
  .add('/schedules/new', scheduleFormPage)
  .add('/schedules/:id', schedulePage)
  .add('/schedules/:id/edit', scheduleFormPage)
  .add('/notifications', notificationsPage)
  .add('/shells', shellsPage)
  .add('/shells/:id', shellPage);
router.start();
