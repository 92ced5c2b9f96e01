/**
 * The recordings page the daemon serves beside its API, behind the same token (the API's onRequest hook
 * checks every route registered here; the page is entered with `?token=` once, then the cookie carries it
 * to the page's fetches, <video> and <img> requests, which cannot send a header):
 *
 *   GET /, /recordings.html         the list (thumbnail, target, start, duration, size, state)
 *   GET /player.html?id=ID          the player: the segments on one timeline, seek-bar previews, activity
 *   GET /static/NAME                the page's own CSS and JS (src/daemon/web/, plain browser JS, no build)
 *   GET /recordings/:id/play/:n     video segment n for the player (see PlayableSegments: the edit list hidden),
 *                                   from the local disk or, once only there, from S3
 *   GET /recordings/:id/thumbnail.jpg, thumbs.jpg, thumbs.vtt, activity.json   (artifacts.ts)
 *   GET /recordings/:id/live/…      the live view of a running recording: src/viewer's page, view only
 *   WS  /recordings/:id/live/websockify
 *
 * The artifacts and the live view hang on each recording's Session through the daemon's job hooks: a
 * RecordingArtifacts per recording watches its session from the start, and a Viewer per running recording
 * is made when someone first opens its live view and closed when the recording ends.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { describeError } from '../errors';
import type { Session } from '../session/session';
import type { TokenCheck } from '../viewer/auth';
import { Viewer } from '../viewer/viewer';
import { COOKIE, idParam } from './api';
import { RecordingArtifacts, type ArtifactFile } from './artifacts';
import { fileSource, sendRanged, type ByteSource, type Overlay } from './byte-source';
import { NotFound, type Daemon } from './daemon';
import type { RecordingJob } from './job';

/** What the page is built from. */
export interface PageOptions {
  daemon: Daemon;
  /** The API's token check (the same token and cookie). */
  auth: TokenCheck;
  /** The token itself: each live Viewer checks it on its own routes and WebSocket. */
  token: string;
  /** Served over https (cookies Secure, WebSocket Origin https). */
  secure?: boolean;
  log?: Logger;
}

/**
 * The page's pages' policy, as the viewer's: only our own scripts, styles, images and media; no framing
 * (the page acts on recordings with the token's authority: clickjacking must not reach its buttons).
 */
const CSP = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; style-src 'self'; "
  + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The page's files, by the name they are served under. Nothing else under web/ is served. */
const WEB_FILES: Record<string, string> = {
  'recordings.html': 'text/html; charset=utf-8',
  'player.html': 'text/html; charset=utf-8',
  'page.css': 'text/css; charset=utf-8',
  'common.js': 'text/javascript; charset=utf-8',
  'recordings.js': 'text/javascript; charset=utf-8',
  'player.js': 'text/javascript; charset=utf-8',
};

const ARTIFACT_TYPES: Record<ArtifactFile, string> = {
  'thumbnail.jpg': 'image/jpeg',
  'thumbs.jpg': 'image/jpeg',
  'thumbs.vtt': 'text/vtt; charset=utf-8',
  'activity.json': 'application/json',
};

/**
 * The page's folder. From the TypeScript sources (jest) it sits beside this file; from the compiled
 * `dist-ts/` tree it is the same folder in the sources, which ship with the package (as src/viewer/web/).
 */
function webRoot(): string {
  const beside = path.join(__dirname, 'web');
  if (existsSync(beside)) return beside;
  return path.resolve(__dirname, '..', '..', '..', 'src', 'daemon', 'web');
}

/** Registers the page's routes and hooks on the API server (buildApi's `extend`). */
export function registerPage(app: FastifyInstance, o: PageOptions): void {
  const { daemon } = o;
  const web = realpathSync(webRoot());
  const files = new Map<string, Buffer>();
  const webFile = (name: string): Buffer => {
    let body = files.get(name);
    if (body === undefined) {
      body = readFileSync(path.join(web, name));
      files.set(name, body);
    }
    return body;
  };
  const sendWeb = (reply: FastifyReply, name: string): FastifyReply => {
    const type = WEB_FILES[name];
    if (type === undefined) throw new NotFound(`no page file ${name}`);
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    // The HTML is entered with ?token=: never cached. Scripts and styles change only with the package.
    if (name.endsWith('.html')) reply.header('content-security-policy', CSP).header('cache-control', 'no-store');
    else reply.header('cache-control', 'no-cache');
    return reply.type(type).send(webFile(name));
  };

  app.get('/', async (_req, reply) => sendWeb(reply, 'recordings.html'));
  app.get('/recordings.html', async (_req, reply) => sendWeb(reply, 'recordings.html'));
  app.get('/player.html', async (_req, reply) => sendWeb(reply, 'player.html'));
  app.get('/static/:name', async (req, reply) => sendWeb(reply, (req.params as { name?: string }).name ?? ''));

  const idOf = idParam;

  // --- artifacts (thumbnails, seek-bar sprites, activity) ---------------------------------------------
  const artifacts = new Map<string, RecordingArtifacts>();
  const artifactsOf = (job: RecordingJob): RecordingArtifacts => {
    let a = artifacts.get(job.id);
    if (a === undefined) {
      a = new RecordingArtifacts(job.dir, () => job.toApi().segments, (level, msg) => { o.log?.[level]({ recording: job.id }, msg); });
      artifacts.set(job.id, a);
    }
    return a;
  };
  for (const name of Object.keys(ARTIFACT_TYPES) as ArtifactFile[]) {
    app.get(`/recordings/:id/${name}`, async (req, reply) => {
      const id = idOf(req);
      const r = daemon.get(id);
      if (r === null) throw new NotFound(`no recording ${id}`);
      const rel = path.join(r.dir, name);
      if (!existsSync(path.join(daemon.root, rel))) throw new NotFound(`recording ${id} has no ${name} (yet)`);
      // Revalidated every time (ETag, Last-Modified): the files of a running recording change.
      reply.header('cache-control', 'private, no-cache').header('x-content-type-options', 'nosniff');
      return reply.type(ARTIFACT_TYPES[name]).sendFile(rel, { cacheControl: false });
    });
  }

  // --- video segments for the player --------------------------------------------------------------------
  const playable = new PlayableSegments();
  app.get('/recordings/:id/play/:n', async (req, reply) => {
    const id = idOf(req);
    const n = (req.params as { n?: string }).n ?? '';
    // The local file while there is one, else the object in S3 (streamed through: the token check and the
    // page's cookie go on working, and the edit-list patch applies the same way).
    const source = await daemon.videoSource(id, n);
    return playable.send(source, req, reply, `${id}/${n}`);
  });

  // --- live view ----------------------------------------------------------------------------------------
  const viewers = new Map<string, Viewer>();
  const liveViewer = (job: RecordingJob): Viewer => {
    let v = viewers.get(job.id);
    if (v === undefined) {
      const viewer = new Viewer({
        token: o.token, cookie: COOKIE, secure: o.secure === true, basePath: `/recordings/${job.id}/live`,
        // Watching a recording is not taking over the desktop: no tab gets control.
        viewOnly: true,
        desktopName: job.meta.target ?? job.meta.url,
        log: (line) => { o.log?.info({ recording: job.id }, line); },
      });
      viewer.attach(job.session);
      viewer.setRecording({ dir: job.meta.dir, startedAt: Date.parse(job.meta.start) });
      viewers.set(job.id, viewer);
      void job.finished.then(() => {
        viewer.close();
        viewers.delete(job.id);
      });
      v = viewer;
    }
    return v;
  };

  app.get('/recordings/:id/live', async (req, reply) => {
    // The viewer's page loads its files by relative URL: it must be entered below the slash.
    const q = req.url.indexOf('?');
    return reply.redirect(`/recordings/${idOf(req)}/live/${q < 0 ? '' : req.url.slice(q)}`, 302);
  });
  app.get('/recordings/:id/live/*', async (req, reply) => {
    const id = idOf(req);
    const job = daemon.job(id);
    if (job === null) {
      if (daemon.get(id) === null) throw new NotFound(`no recording ${id}`);
      const rest = (req.params as { '*'?: string })['*'] ?? '';
      // The recording has ended: its page becomes the player; anything else of the live view is gone.
      if (rest === '' || rest === 'index.html') return reply.redirect(`/player.html?id=${id}`, 302);
      throw new NotFound(`recording ${id} is not running: no live view`);
    }
    const viewer = liveViewer(job);
    reply.hijack();
    if (!viewer.handleRequest(req.raw, reply.raw)) {
      reply.raw.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      reply.raw.end('not found\n');
    }
    return reply;
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', 'http://daemon.invalid');
    const m = /^\/recordings\/([a-z0-9]{12})\/live\/websockify$/.exec(url.pathname);
    const job = m?.[1] === undefined ? null : daemon.job(m[1]);
    // The daemon's only WebSockets are the live views; nothing else upgrades.
    if (job === null) { refuse('404 Not Found'); return; }
    // Checked before a Viewer is made for it (the viewer checks again, with the page's Origin).
    if (!o.auth.allows(req, url)) { refuse('401 Unauthorized'); return; }
    if (!liveViewer(job).handleUpgrade(req, socket, head)) refuse('404 Not Found');
  };
  app.server.on('upgrade', onUpgrade);

  // --- every recording's sessions ----------------------------------------------------------------------
  const removeHooks = daemon.addJobHooks({
    session: (job: RecordingJob, session: Session) => {
      artifactsOf(job).attach(session);
      viewers.get(job.id)?.attach(session);
    },
    finishing: async (job: RecordingJob) => {
      const a = artifacts.get(job.id);
      artifacts.delete(job.id);
      try {
        await a?.finish();
      } catch (err) {
        o.log?.warn({ recording: job.id }, `the recordings page's files were not finished: ${describeError(err)}`);
      }
    },
  });

  app.addHook('onClose', (_instance, done) => {
    removeHooks();
    app.server.off('upgrade', onUpgrade);
    for (const v of viewers.values()) v.close();
    viewers.clear();
    done();
  });
}

/**
 * Serves a recording's MP4 segments to the player with their edit list hidden.
 *
 * The recorder writes every segment on the session's clock: segment 2 of a rotation starts at, say, 7.04 s,
 * which a fast-start MP4 says with an edit list whose first entry is an empty edit of 7.04 s. That is correct
 * MP4 (ffprobe: start_time 7.04), but Chromium (156, measured) handles it badly: `duration` first says the
 * media length (7.0 s), then grows with what has been buffered, and a seek beyond the duration known so far
 * is clamped to it, so most of a later segment cannot be sought into. Without the edit list the segment's
 * media time simply starts at 0 at its first frame, which the page maps to the recording's clock with the
 * segment's `start_ms` (known from the API). So the `edts` box is renamed `free` (the same size: no offset in
 * the file moves, and every MP4 reader skips `free`), and the movie and track durations are set to the
 * media's own. The files on disk (and the objects in S3) stay as they are; only what the page receives differs.
 *
 * Fragmented files (a segment still being written) keep their times in each fragment's `tfdt` and are served
 * as they are: the page plays finished segments only.
 */
export class PlayableSegments {
  /** Patched `moov` boxes by source, for as long as it is unchanged (a player makes many Range requests). */
  private readonly cache = new Map<string, { key: string; moov: Overlay | null }>();

  /** Sends `source` (a local file, or an S3 object) with Range support, its `moov` patched when that applies. */
  async send(source: ByteSource, req: FastifyRequest, reply: FastifyReply, cacheKey: string): Promise<FastifyReply> {
    let hit = this.cache.get(cacheKey);
    if (hit?.key !== source.version) {
      hit = { key: source.version, moov: await patchedMoovOf(source).catch(() => null) };
      this.cache.set(cacheKey, hit);
      // A small cache: one player streams one segment at a time.
      while (this.cache.size > 16) this.cache.delete(this.cache.keys().next().value ?? '');
    }
    return sendRanged(source, req, reply, `"${source.version}-p"`, hit.moov);
  }
}

/** An MP4 box as found: where it starts, its header length and total size. */
interface Box {
  type: string;
  offset: number;
  header: number;
  size: number;
}

/** The boxes directly inside `buf[start, end)` (offsets relative to `buf`); stops at anything malformed. */
function childBoxes(buf: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  let at = start;
  while (at + 8 <= end) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let header = 8;
    if (size === 1) {
      if (at + 16 > end) break;
      size = Number(buf.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || at + size > end) break;
    out.push({ type, offset: at, header, size });
    at += size;
  }
  return out;
}

/** The largest moov box the player's patch reads (a day-long segment's sample tables are well below it). */
const MAX_MOOV = 64 << 20;

/**
 * Finds the file's `moov` and returns it patched (PlayableSegments' reasons), or null when there is
 * nothing to patch: no moov (yet), a fragmented file, or no leading empty edit.
 */
export async function patchedMoov(file: string, size: number): Promise<Overlay | null> {
  const source = await fileSource(path.dirname(file), path.basename(file));
  return patchedMoovOf({ ...source, size });
}

/** How much of the start is read at once while looking for the moov (ftyp and moov headers lie in it). */
const HEAD_BYTES = 64 * 1024;

/**
 * patchedMoov on any ByteSource. The first 64 KiB are read in one go (one ranged GET for an S3 object):
 * a fast-start file's ftyp and moov header, and often the whole moov, lie in it.
 */
export async function patchedMoovOf(source: ByteSource): Promise<Overlay | null> {
  const size = source.size;
  const head = await source.read(0, Math.min(size, HEAD_BYTES));
  const bytesAt = async (at: number, length: number): Promise<Buffer> => (at + length <= head.length ? head.subarray(at, at + length) : source.read(at, length));
  let at = 0;
  while (at + 8 <= size) {
    const box = await bytesAt(at, Math.min(16, size - at));
    if (box.length < 8) return null;
    let boxSize = box.readUInt32BE(0);
    const type = box.toString('latin1', 4, 8);
    if (boxSize === 1) {
      if (box.length < 16) return null;
      boxSize = Number(box.readBigUInt64BE(8));
    } else if (boxSize === 0) {
      boxSize = size - at;
    }
    if (boxSize < 8 || at + boxSize > size) return null;
    if (type === 'moov') {
      if (boxSize > MAX_MOOV) return null;
      // A copy: the patch must not write into the head buffer (or a source's cached bytes).
      const bytes = Buffer.from(await bytesAt(at, boxSize));
      if (bytes.length !== boxSize) return null;
      return hideEditList(bytes) ? { offset: at, bytes } : null;
    }
    at += boxSize;
  }
  return null;
}

/**
 * Patches a `moov` box in place: each track whose edit list starts with an empty edit loses it (`edts` →
 * `free`), and its `tkhd` and the `mvhd` durations become the media's own. True when something changed.
 * A fragmented movie (`mvex`) is left alone.
 */
export function hideEditList(moov: Buffer): boolean {
  const top = childBoxes(moov, 8, moov.length);
  if (top.some((b) => b.type === 'mvex')) return false;
  const mvhd = top.find((b) => b.type === 'mvhd');
  if (mvhd === undefined) return false;
  const movieScale = timescaleOf(moov, mvhd);
  if (movieScale === null || movieScale === 0) return false;
  let changed = false;
  let longest = 0;
  for (const trak of top.filter((b) => b.type === 'trak')) {
    const kids = childBoxes(moov, trak.offset + trak.header, trak.offset + trak.size);
    const edts = kids.find((b) => b.type === 'edts');
    const tkhd = kids.find((b) => b.type === 'tkhd');
    const mdia = kids.find((b) => b.type === 'mdia');
    const mdhd = mdia === undefined ? undefined : childBoxes(moov, mdia.offset + mdia.header, mdia.offset + mdia.size).find((b) => b.type === 'mdhd');
    if (tkhd === undefined || mdhd === undefined) continue;
    const mediaScale = timescaleOf(moov, mdhd);
    const mediaDuration = durationOf(moov, mdhd);
    if (mediaScale === null || mediaScale === 0 || mediaDuration === null) continue;
    const duration = Math.round((mediaDuration * movieScale) / mediaScale);
    longest = Math.max(longest, duration);
    if (edts === undefined || !startsWithEmptyEdit(moov, edts)) continue;
    moov.write('free', edts.offset + 4, 'latin1');
    setTkhdDuration(moov, tkhd, duration);
    changed = true;
  }
  if (changed) setDuration(moov, mvhd, longest);
  return changed;
}

/** mvhd/mdhd: version, flags, creation and modification times, then timescale and duration. */
function timescaleOf(buf: Buffer, box: Box): number | null {
  const at = box.offset + box.header;
  const v = buf[at];
  const off = at + (v === 1 ? 20 : 12);
  return off + 4 <= box.offset + box.size ? buf.readUInt32BE(off) : null;
}

function durationOf(buf: Buffer, box: Box): number | null {
  const at = box.offset + box.header;
  const v = buf[at];
  if (v === 1) return at + 32 <= box.offset + box.size ? Number(buf.readBigUInt64BE(at + 24)) : null;
  return at + 20 <= box.offset + box.size ? buf.readUInt32BE(at + 16) : null;
}

function setDuration(buf: Buffer, box: Box, value: number): void {
  const at = box.offset + box.header;
  if (buf[at] === 1) buf.writeBigUInt64BE(BigInt(value), at + 24);
  else buf.writeUInt32BE(Math.min(value, 0xffffffff), at + 16);
}

/** tkhd: version, flags, times, track id, a reserved word, then the duration (ISO 14496-12 8.3.2). */
function setTkhdDuration(buf: Buffer, box: Box, value: number): void {
  const at = box.offset + box.header;
  if (buf[at] === 1) {
    if (at + 36 <= box.offset + box.size) buf.writeBigUInt64BE(BigInt(value), at + 28);
  } else if (at + 24 <= box.offset + box.size) {
    buf.writeUInt32BE(Math.min(value, 0xffffffff), at + 20);
  }
}

/** True when the edts box's elst has a first entry with media_time -1 (an empty edit: a start offset). */
function startsWithEmptyEdit(buf: Buffer, edts: Box): boolean {
  const elst = childBoxes(buf, edts.offset + edts.header, edts.offset + edts.size).find((b) => b.type === 'elst');
  if (elst === undefined) return false;
  const at = elst.offset + elst.header;
  if (at + 8 > elst.offset + elst.size) return false;
  const v = buf[at];
  const count = buf.readUInt32BE(at + 4);
  if (count < 1) return false;
  const entry = at + 8;
  if (v === 1) return entry + 16 <= elst.offset + elst.size && buf.readBigInt64BE(entry + 8) === -1n;
  return entry + 8 <= elst.offset + elst.size && buf.readInt32BE(entry + 4) === -1;
}

export { parseRange } from './byte-source';
