/**
 * The daemon's HTTP API (fastify). Every route but /healthz needs the token: an `Authorization: Bearer`
 * header (scripts), or — for the recordings page, whose <video> and <img> elements cannot send headers —
 * `?token=` on the page's first load, which sets an HttpOnly cookie (src/viewer/auth.ts, compared in
 * constant time). Bodies are validated with zod and a mistake is a 400 naming its path; every error is
 * JSON `{error: CODE, message}` with the codes of docs/ERRORS.md. Requests are not logged by fastify: its
 * request lines would carry `?token=` into the log.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DeskrecError, describeError, SinkError, UsageError } from '../errors';
import { TokenCheck } from '../viewer/auth';
import { formatIssues } from './config';
import { DaemonBusy, NotFound, type Daemon } from './daemon';
import { openApiDocument } from './openapi';
import { recordOptionsSchema } from './record-options';
import { isRecordingId, RECORDING_STATES, StorageError } from './store';
import { sendRanged } from './byte-source';

/** The body of `POST /recordings`. */
export const startBodySchema = z.strictObject({
  url: z.string().min(1).optional(),
  target: z.string().min(1).optional(),
  'password-file': z.string().min(1).optional(),
  options: recordOptionsSchema.optional(),
}).superRefine((b, ctx) => {
  if ((b.url === undefined) === (b.target === undefined)) ctx.addIssue({ code: 'custom', message: 'give exactly one of url and target', path: ['url'] });
  if (b['password-file'] !== undefined && !path.isAbsolute(b['password-file'])) {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute path (the daemon has no working directory of yours)', path: ['password-file'] });
  }
});

export const listQuerySchema = z.strictObject({
  target: z.string().min(1).optional(),
  state: z.enum(RECORDING_STATES).optional(),
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  token: z.string().optional(),
});

/** What the API server is built from. */
export interface ApiOptions {
  daemon: Daemon;
  token: string;
  log: Logger;
  metrics: boolean;
  /** Served over https (the cookie gets `Secure`). */
  secure: boolean;
  https?: { cert: Buffer; key: Buffer } | undefined;
  /** Extra routes (the recordings page), registered after the API's own. */
  extend?: (app: FastifyInstance, auth: TokenCheck) => Promise<void> | void;
}

/** The HTTP status of an error. */
function statusOf(err: unknown): number {
  if (err instanceof NotFound) return 404;
  if (err instanceof DaemonBusy) return err.code === 'DRAINING' ? 503 : 409;
  if (err instanceof SinkError && (err.code === 'DISK_LOW' || err.code === 'DISK_FULL')) return 507;
  if (err instanceof UsageError) return 400;
  // The object store failed (a segment only in S3, a DELETE that must remove objects): the gateway's fault.
  if (err instanceof StorageError) return 502;
  return 500;
}

/** Sends an error as `{error, message}`. */
function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: code, message });
}

function badRequest(reply: FastifyReply, error: z.ZodError): FastifyReply {
  return sendError(reply, 400, 'BAD_REQUEST', formatIssues(error).join('; '));
}

export const COOKIE = 'deskrec-daemon';

/** The `:id` of a route, checked to look like a recording id before anything touches the disk (else 404). */
export function idParam(req: FastifyRequest): string {
  const id = (req.params as { id?: string }).id ?? '';
  if (!isRecordingId(id)) throw new NotFound(`no recording ${id}`);
  return id;
}

/** Builds the API server (not listening yet). */
export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    ...(o.https === undefined ? {} : { https: o.https }),
  });
  const auth = new TokenCheck(o.token, COOKIE);
  const { daemon } = o;

  app.setErrorHandler((err: unknown, _req, reply) => {
    // fastify's own errors (unparsable JSON, too large a body, a wrong content type) are the client's.
    const fe = err as { statusCode?: number; code?: string; message?: string };
    if (!(err instanceof DeskrecError) && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code = fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/.test(fe.message ?? '') ? 'BAD_JSON' : (fe.code ?? 'BAD_REQUEST');
      return sendError(reply, fe.statusCode, code, fe.message ?? 'bad request');
    }
    const status = statusOf(err);
    if (status === 500) o.log.error(`API error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return sendError(reply, status, err instanceof DeskrecError ? err.code : 'INTERNAL', describeError(err));
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, 'NOT_FOUND', 'no such route'));

  app.addHook('onRequest', async (req, reply) => {
    const url = new URL(req.url, 'http://daemon');
    if (url.pathname === '/healthz') return;
    if (!auth.allows(req.raw, url)) {
      await sendError(reply.header('WWW-Authenticate', 'Bearer'), 401, 'UNAUTHORIZED', 'a valid token is needed (Authorization: Bearer TOKEN)');
      return;
    }
    // A page opened with ?token= keeps it in a cookie for its video, image and script requests.
    const q = url.searchParams.get('token');
    if (q !== null && req.method === 'GET') reply.header('Set-Cookie', auth.setCookie(q, o.secure));
  });

  await app.register(fastifySwagger, { mode: 'static', specification: { document: openApiDocument() } });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  // Segment files are served with Range, ETag and Last-Modified by @fastify/static's sendFile.
  await app.register(fastifyStatic, { root: daemon.root, serve: false });

  app.get('/healthz', async (_req, reply) => {
    const h = daemon.health();
    return reply.code(h.ok ? 200 : 503).send(h);
  });

  app.get('/metrics', async (_req, reply) => {
    if (!o.metrics) return sendError(reply, 404, 'NOT_FOUND', 'metrics are off in the configuration');
    const { contentType, body } = await daemon.metrics.text();
    return reply.type(contentType).send(body);
  });

  app.get('/openapi.json', async (_req, reply) => reply.send(openApiDocument()));

  app.post('/recordings', async (req, reply) => {
    const body = startBodySchema.safeParse(req.body ?? {});
    if (!body.success) return badRequest(reply, body.error);
    const b = body.data;
    if (daemon.clustered) {
      // Cluster mode: queued for whichever daemon has room; the answer is the recording as the cluster shows it.
      const r = await daemon.clusterStart({ url: b.url, target: b.target, passwordFile: b['password-file'], options: b.options });
      return reply.code(201).header('Location', `/recordings/${r.id}`).send(r);
    }
    const job = await daemon.startRecording({ url: b.url, target: b.target, passwordFile: b['password-file'], options: b.options });
    return reply.code(201).header('Location', `/recordings/${job.id}`).send(daemon.get(job.id) ?? job.toApi());
  });

  app.get('/recordings', async (req, reply) => {
    const q = listQuerySchema.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error);
    const { recordings, total } = await daemon.listAny(q.data);
    return reply.send({ recordings, total, offset: q.data.offset, limit: q.data.limit });
  });

  app.get('/recordings/:id', async (req, reply) => {
    const id = idParam(req);
    const r = await daemon.getAny(id);
    if (r === null) throw new NotFound(`no recording ${id}`);
    return reply.send(r);
  });

  app.delete('/recordings/:id', async (req, reply) => reply.send(await daemon.stopRecording(idParam(req))));

  app.delete('/recordings/:id/files', async (req, reply) => {
    await daemon.deleteFiles(idParam(req));
    return reply.code(204).send();
  });

  app.get('/recordings/:id/session.json', async (req, reply) => {
    const id = idParam(req);
    const dir = daemon.dirOf(id);
    if (dir === null) throw new NotFound(`no recording ${id}`);
    const text = await fs.readFile(path.join(dir, 'session.json'), 'utf8').catch(() => null);
    if (text === null) throw new NotFound(`recording ${id} has no session.json`);
    return reply.type('application/json').send(text.trimEnd());
  });

  app.get('/recordings/:id/segments/:n', async (req, reply) => {
    const source = await daemon.videoSource(idParam(req), (req.params as { n?: string }).n ?? '');
    if (source.localPath !== null) return reply.type('video/mp4').sendFile(source.localPath);
    // Only in S3 now: streamed through with Range (a ranged GetObject per request), so the token check
    // and the page's cookie go on working; no pre-signed URL leaves the daemon.
    return sendRanged(source, req, reply, `"${source.version}"`);
  });

  await o.extend?.(app, auth);
  return app;
}
