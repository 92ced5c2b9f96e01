/**
 * Who may use a viewer: the holder of its token, from a page of its own origin. The token is random
 * (or read from a file), never logged, and compared in constant time (of its SHA-256, so lengths do not
 * leak either). A browser proves it in one of three ways: `?token=` on the first page load, the cookie that
 * page load sets (the noVNC modules are imported by relative URL and cannot carry a query), or an
 * `Authorization: Bearer` header (scripts, the page's status requests).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fresh random token: 32 bytes, base64url (43 characters, safe in a URL). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The cookie that carries the token for one viewer. Cookies are scoped by host, not by port, so two viewers
 * on one machine (two ports of 127.0.0.1) must not share a cookie name or each would log the other out.
 */
export function cookieName(port: number): string {
  return `deskrec-viewer-${port}`;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Checks requests against one token. */
export class TokenCheck {
  private readonly expected: Buffer;

  constructor(token: string, private readonly cookie: string) {
    if (token.length < 16) throw new Error('a viewer token must have at least 16 characters');
    this.expected = digest(token);
  }

  /** True when `candidate` is the token (constant time). */
  matches(candidate: string | null | undefined): boolean {
    if (typeof candidate !== 'string' || candidate === '') return false;
    return timingSafeEqual(digest(candidate), this.expected);
  }

  /** True when the request carries the token in its query, an Authorization header or the viewer's cookie. */
  allows(req: IncomingMessage, url: URL): boolean {
    if (this.matches(url.searchParams.get('token'))) return true;
    const auth = req.headers.authorization;
    if (auth !== undefined && /^Bearer /i.test(auth) && this.matches(auth.slice(7).trim())) return true;
    return this.matches(readCookie(req.headers.cookie, this.cookie));
  }

  /** The Set-Cookie value that lets the page's module imports through (HttpOnly, same site only). */
  setCookie(token: string, secure: boolean): string {
    return `${this.cookie}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }
}

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/**
 * True when a WebSocket upgrade comes from the viewer's own page. Browsers always send Origin on a
 * WebSocket; a page of another site (which could otherwise ride on the cookie) sends its own and is refused.
 * Clients that are not browsers send none and still need the token.
 */
export function sameOrigin(req: IncomingMessage, secure: boolean): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const host = req.headers.host;
  if (host === undefined) return false;
  return origin === `${secure ? 'https' : 'http'}://${host}`;
}
