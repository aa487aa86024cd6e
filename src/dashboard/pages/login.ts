/**
 * Sign in with email and password, or through single sign-on when the server has it (a link to
 * /auth/oidc/login: the provider sends the browser back signed in). The server sets an HttpOnly
 * session cookie either way. Without local passwords only the single sign-on button is shown.
 */
import { api, ApiError, request } from '../api.js';
import { h } from '../dom.js';
import type { Route } from '../router.js';
import { adopt } from '../session.js';
import { errorMessage, field, notice } from '../ui.js';
import { SSO_ERROR_PARAM, type OidcStatusView } from '../../shared/oidcApi.js';

/** What a failed single sign-on came back with (the server sends only the code). */
const SSO_ERRORS: Record<string, string> = {
  DC_OIDC_OFF: 'Single sign-on is not configured on this server.',
  DC_OIDC_LOGIN_EXPIRED: 'That sign-on attempt took too long or was used already. Try again.',
  DC_OIDC_STATE_MISMATCH: "The identity provider's answer did not belong to this browser's sign-on attempt. Try again.",
  DC_OIDC_DENIED: 'The identity provider did not sign you in.',
  DC_OIDC_FAILED: 'The identity provider could not be reached, or its answer failed verification. Try again, or ask an owner to look at the server log.',
  DC_OIDC_NO_EMAIL: 'The identity provider gave no email address for your account.',
  DC_OIDC_EMAIL_UNVERIFIED: 'The identity provider says your email address is not verified. Verify it there, then sign in again.',
  DC_OIDC_EMAIL_TAKEN: 'An account with your email exists here and the identity provider does not vouch for the address, so they were not linked. Ask an owner.',
  DC_ACCOUNT_DISABLED: 'Your account is disabled or removed; an owner can enable it again.',
};

export async function loginPage(root: HTMLElement, route: Route, done: (target: string) => void): Promise<void> {
  document.title = 'Sign in · djangocommand';
  let status: OidcStatusView = { enabled: false, name: null, login_url: null, local_passwords: true };
  try {
    status = await request<OidcStatusView>('GET', '/api/v1/oidc');
  } catch {
    // An older server, or none: show the password form as before.
  }
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const problem = h('div', { class: 'login-problem', 'aria-live': 'assertive' });
  const ssoError = route.query.get(SSO_ERROR_PARAM);
  if (ssoError) {
    const text = SSO_ERRORS[ssoError] ?? 'Single sign-on failed.';
    problem.append(notice('error', text, ' ', h('code', { class: 'error-code' }, ssoError.replace(/[^A-Z0-9_]/g, '').slice(0, 40))));
  }
  const submit = h('button', { type: 'submit', class: 'button button-primary button-wide' }, 'Sign in');
  const sso =
    status.enabled && status.login_url
      ? h('a', { class: `button button-wide ${status.local_passwords ? '' : 'button-primary'}`.trim(), href: status.login_url, 'data-sso': 'true' }, `Sign in with ${status.name ?? 'single sign-on'}`)
      : null;
  const heading = [
    h('h1', { id: 'login-title' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '▸'), 'djangocommand'),
    h('p', { class: 'muted' }, 'Run Django management commands on your servers, and watch them live.'),
  ];
  if (!status.local_passwords) {
    const card = h(
      'div',
      { class: 'login-card', role: 'region', 'aria-labelledby': 'login-title' },
      ...heading,
      problem,
      sso ?? notice('error', 'Password sign-in is turned off and single sign-on is not configured; an owner must change the server settings.'),
    );
    root.append(h('main', { class: 'login-page' }, card));
    sso?.focus();
    return;
  }
  const form = h(
    'form',
    {
      class: 'login-card',
      'aria-labelledby': 'login-title',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        problem.replaceChildren();
        submit.disabled = true;
        submit.textContent = 'Signing in…';
        try {
          adopt(await api.signIn(email.value.trim(), password.value));
          done('/');
        } catch (err) {
          const text =
            err instanceof ApiError && err.status === 401
              ? 'That email and password do not match an account.'
              : err instanceof ApiError && err.status === 429
                ? `Too many failed attempts. ${err.message}`
                : errorMessage(err);
          problem.replaceChildren(notice('error', text));
          password.select();
          submit.disabled = false;
          submit.textContent = 'Sign in';
        }
      },
    },
    ...heading,
    field('Email', email).el,
    field('Password', password).el,
    problem,
    submit,
    sso ? h('p', { class: 'muted', style: 'text-align: center; margin: .75rem 0' }, 'or') : null,
    sso,
  );
  root.append(h('main', { class: 'login-page' }, form));
  email.focus();
}
