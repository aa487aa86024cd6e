/**
 * "Set your password": shown before anything else when the person signed in with a one-time
 * password (a new user's, or the first owner's generated one). The server refuses every other
 * call with DC_PASSWORD_CHANGE_REQUIRED until this is done; setting it ends the person's other
 * sessions and keeps this one.
 */
import { ApiError } from '../api.js';
import { accessApi } from '../accessApi.js';
import { h } from '../dom.js';
import { passwordChanged, signedInUser } from '../session.js';
import { errorNotice, field, notice, setFieldError } from '../ui.js';

const MIN_LENGTH = 12;

export function passwordPage(root: HTMLElement, done: () => void, signOut: () => void): void {
  document.title = 'Set your password · djangocommand';
  const current = h('input', { type: 'password', name: 'current-password', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', name: 'new-password', autocomplete: 'new-password', required: true, minlength: String(MIN_LENGTH) });
  const repeat = h('input', { type: 'password', name: 'repeat-password', autocomplete: 'new-password', required: true });
  const currentField = field('Current (one-time) password', current);
  const nextField = field('New password', next, { help: `At least ${MIN_LENGTH} characters; a few unrelated words are easy to type and hard to guess.` });
  const repeatField = field('Repeat the new password', repeat);
  const problem = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'button button-primary button-wide' }, 'Set password');

  const check = (): HTMLInputElement | null => {
    setFieldError(current, currentField.error, current.value ? null : 'Give the password you signed in with.');
    setFieldError(next, nextField.error, next.value.length >= MIN_LENGTH ? (next.value === current.value ? 'The new password must differ from the one-time password.' : null) : `At least ${MIN_LENGTH} characters.`);
    setFieldError(repeat, repeatField.error, repeat.value === next.value ? null : 'The two new passwords differ.');
    return [current, next, repeat].find((c) => c.getAttribute('aria-invalid') === 'true') ?? null;
  };

  const form = h(
    'form',
    {
      class: 'login-card',
      'aria-labelledby': 'password-title',
      novalidate: true,
      'data-testid': 'password-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        problem.replaceChildren();
        const wrong = check();
        if (wrong) return wrong.focus();
        submit.disabled = true;
        try {
          await accessApi.changePassword(current.value, next.value);
          passwordChanged();
          done();
        } catch (err) {
          if (err instanceof ApiError && err.details.field === 'current_password') {
            setFieldError(current, currentField.error, err.message);
            current.select();
          } else if (err instanceof ApiError && err.details.field === 'new_password') {
            setFieldError(next, nextField.error, err.message);
            next.focus();
          } else problem.replaceChildren(errorNotice(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h1', { id: 'password-title', tabindex: '-1' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '▸'), 'Set your password'),
    notice('info', `${signedInUser()?.email ?? 'You'} signed in with a one-time password. Choose your own before going on; your other sessions end when it is set.`),
    currentField.el,
    nextField.el,
    repeatField.el,
    problem,
    submit,
    h('p', { class: 'muted small', style: 'text-align: center; margin: .75rem 0 0' }, h('button', { type: 'button', class: 'button button-plain', onClick: signOut }, 'Sign out')),
  );
  root.replaceChildren(h('main', { class: 'login-page' }, form));
  current.focus();
}
