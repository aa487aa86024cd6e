/**
 * The store's part for single sign-on: which user a provider's person is (issuer + subject), and
 * the sign-ins on their way through the provider. Implemented once over SQLite and PostgreSQL in
 * oidcSql.ts.
 */

/** A person at an OpenID Connect provider, linked to one user. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  userId: string;
  /** The email the provider gave at the last sign-in. */
  email: string;
  createdAt: number;
  lastLoginAt: number;
}

/** A started sign-in: what the callback must find again (state, nonce, PKCE verifier). */
export interface PendingOidcLogin {
  /** SHA-256 of the secret in the browser's short-lived cookie. */
  idHash: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  createdAt: number;
  expiresAt: number;
}

export interface OidcStore {
  findIdentity(issuer: string, subject: string): Promise<OidcIdentity | undefined>;
  /** Links an identity; false when that issuer and subject are linked already (to anyone). */
  linkIdentity(identity: OidcIdentity): Promise<boolean>;
  /** Records a sign-in with the email the provider gave this time. */
  touchIdentity(issuer: string, subject: string, email: string, at: number): Promise<void>;

  savePendingLogin(login: PendingOidcLogin): Promise<void>;
  /** Removes and returns the pending sign-in, if it exists and has not expired: each is used at most once. */
  takePendingLogin(idHash: string, now: number): Promise<PendingOidcLogin | undefined>;
  /** Deletes expired pending sign-ins; returns how many. */
  prunePendingLogins(now: number): Promise<number>;
}
