/** Wire types of single sign-on (OpenID Connect): what the sign-in page asks before it draws itself. */

/** GET /api/v1/oidc: no credential needed. */
export interface OidcStatusView {
  /** Single sign-on is configured: the page shows the button, which goes to `login_url`. */
  enabled: boolean;
  /** The provider's name for the button ("Sign in with <name>"); null when off. */
  name: string | null;
  login_url: string | null;
  /** Email and password sign-in is on (DJANGOCOMMAND_LOCAL_PASSWORDS); when off the page hides the form. */
  local_passwords: boolean;
}

/** Where a failed single sign-on sends the browser: the sign-in page, with the error's DC_ code. */
export const SSO_ERROR_PARAM = 'sso_error';
