// Cookie sessions for the demo: a page signs in over HTTP (POST /api/session), gets an
// HttpOnly, SameSite=Strict cookie, and its WebSocket authenticates from that cookie alone:
// the page's script never sees a token. Sessions live in this instance's memory (a page
// talks to the instance that served it), bounded in number and in age.

export const SESSION_COOKIE = 'demo_session';
const MAX_AGE_S = 60 * 60;
const MAX_SESSIONS = 10_000;

export class SessionStore {
  /** session id → display name and expiry (epoch ms); a Map keeps insertion order, oldest first. */
  private readonly sessions = new Map<string, { name: string; expires: number }>();

  /** A new session for `name`; answers the `Set-Cookie` value that carries it. */
  create(name: string, now = Date.now()): string {
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const id = crypto.randomUUID();
    this.sessions.set(id, { name, expires: now + MAX_AGE_S * 1000 });
    return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${MAX_AGE_S}`;
  }

  /** The name signed in under `id`, if that session exists and has not expired. */
  nameOf(id: string | undefined, now = Date.now()): string | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expires <= now) {
      this.sessions.delete(id);
      return undefined;
    }
    return session.name;
  }

  /** Ends the session; answers the `Set-Cookie` value that clears the cookie. */
  end(id: string | undefined): string {
    if (id !== undefined) this.sessions.delete(id);
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }
}
