/** Who is signed in in this tab. The cookie is HttpOnly: the page only knows what the server said. */
import { api, setCsrfToken, type SessionUser, type SessionView } from './api.js';

let user: SessionUser | null = null;

export function signedInUser(): SessionUser | null {
  return user;
}

export function adopt(session: SessionView | null): void {
  user = session?.user ?? null;
  setCsrfToken(session?.csrf_token ?? null);
}

/** Asks the server whether the cookie still holds a session. */
export async function loadSession(): Promise<SessionUser | null> {
  try {
    adopt(await api.session());
  } catch {
    adopt(null);
  }
  return user;
}
