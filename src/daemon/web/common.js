// Shared by the recordings list and the player (plain ES module, no build step, like src/viewer/web/).
// Every request carries the token in the cookie the first page load (?token=) set: fetch, <img> and
// <video> send it on their own, so no script ever holds the token.

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** States of a recording that is still going on (the API's RECORDING_STATES minus the finished ones). */
export const RUNNING = new Set(['starting', 'recording', 'reconnecting', 'finalizing']);

/**
 * Keeps the token out of the address bar once the cookie holds it: screenshots, screen shares and the
 * browser history then do not show it (as the viewer page does).
 */
export function stripToken() {
  const u = new URL(location.href);
  if (!u.searchParams.has('token')) return;
  u.searchParams.delete('token');
  history.replaceState(null, '', u.pathname + u.search + u.hash);
}

/** Calls the daemon's API; throws an Error saying `STATUS CODE: message` when it answers with an error. */
export async function api(path, init = {}) {
  const res = await fetch(path, { cache: 'no-store', ...init });
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      detail = `${body.error}: ${body.message}`;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${res.status} ${detail}`);
  }
  return res.status === 204 ? null : res.json();
}

/** `m:ss` or `h:mm:ss` of a time in ms (rounded down to the second, as players show it). */
export function fmtClock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Bytes as people read them (decimal units, as disks are sold). */
export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/** A start time in the browser's own time zone (the daemon stores UTC). */
export function fmtDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A new element with a class and text (text only: names, URLs and messages never become markup). */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** The video segments of a recording (PNG frames are listed too, with kind 'png'; they are not played). */
export function videoSegments(rec) {
  return rec.segments.filter((s) => s.kind === 'mp4').map((s, n) => ({ n, start: s.start_ms, dur: s.duration_ms, file: s.file, bytes: s.bytes }));
}
