/** Sign in with email and password; the server sets an HttpOnly session cookie. */
import { api, ApiError } from '../api.js';
import { h } from '../dom.js';
import type { Route } from '../router.js';
import { adopt } from '../session.js';
import { errorMessage, field, notice } from '../ui.js';

export async function loginPage(root: HTMLElement, _route: Route, done: (target: string) => void): Promise<void> {
  document.title = 'Sign in · djangocommand';
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const problem = h('div', { class: 'login-problem', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'button button-primary button-wide' }, 'Sign in');
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
    h('h1', { id: 'login-title' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '▸'), 'djangocommand'),
    h('p', { class: 'muted' }, 'Run Django management commands on your servers, and watch them live.'),
    field('Email', email).el,
    field('Password', password).el,
    problem,
    submit,
  );
  root.append(h('main', { class: 'login-page' }, form));
  email.focus();
}
