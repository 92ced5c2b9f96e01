/**
 * `deskrec view`: a session shown in the browser through the viewer, recorded when `--capture DIR` is given.
 * This face owns only what a command line owns: the HTTP(S) server the viewer is mounted on, the printed
 * URL, opening a browser, and SIGINT/SIGTERM; the session (and its reconnects and recording) is the library's.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { UsageError } from '../errors';
import { requireEncoder } from '../recorder/encoders/catalog';
import type { InputLogLevel } from '../session/input-log';
import type { RecordOptions } from '../session/options';
import { Session } from '../session/session';
import { openSource, type SourceOptions } from '../sources/open';
import { cookieName, newToken } from '../viewer/auth';
import { Viewer } from '../viewer/viewer';
import { EXIT } from './exit-codes';

/** `deskrec view` after validation. */
export interface ViewArgs {
  url: string;
  listen: { host: string; port: number };
  /** Recording options when `--capture DIR` was given, else null (nothing is converted or encoded). */
  record: RecordOptions | null;
  source: SourceOptions;
  /** Stop after this many seconds of session time; null: until Ctrl-C / SIGTERM. */
  durationS: number | null;
  sharedControl: boolean;
  /** Start the system browser on the page. */
  open: boolean;
  /** Read the token from this file's first line instead of making a random one. */
  tokenFile: string | null;
  tls: { cert: string; key: string } | null;
  insecureListen: boolean;
  /** With `record`: write input.jsonl (pointer only, or keys too). */
  inputLog: InputLogLevel | null;
  quiet: boolean;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError('BAD_ARGUMENT', `cannot read --token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const token = (text.split(/\r?\n/)[0] ?? '').trim();
  if (token.length < 16) throw new UsageError('BAD_ARGUMENT', `the token in ${file} must have at least 16 characters`);
  return token;
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new UsageError('LISTEN_FAILED', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`));
    });
    server.listen(port, host, () => { resolve(server.address() as AddressInfo); });
  });
}

/**
 * Opens the page in the system browser without putting the token in any process's argv (where `ps` shows
 * it): a private temporary HTML file redirects to the URL, and only its path is passed to xdg-open.
 */
function openBrowser(url: string, log: (line: string) => void): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'deskrec-open-'));
  const file = path.join(dir, 'viewer.html');
  const escaped = url.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  writeFileSync(file, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${escaped}"><title>deskrec</title>\n`, { mode: 0o600 });
  const child = spawn('xdg-open', [file], { stdio: 'ignore', detached: true });
  child.on('error', () => { log(`--open: no system browser found (xdg-open); open ${file} or the URL above yourself`); });
  child.unref();
}

/** Runs `deskrec view`; resolves to the exit code. */
export async function runView(args: ViewArgs): Promise<number> {
  const log = (line: string): void => { process.stderr.write(`deskrec: ${line}\n`); };
  if (!isLoopback(args.listen.host) && args.tls === null && !args.insecureListen) {
    throw new UsageError('INSECURE_LISTEN',
      `listening on ${args.listen.host} (not loopback) needs --tls-cert FILE --tls-key FILE, or --insecure-listen to serve the token over plain http`);
  }
  const token = args.tokenFile === null ? newToken() : readToken(args.tokenFile);
  let server: Server;
  if (args.tls !== null) {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(args.tls.cert);
      key = readFileSync(args.tls.key);
    } catch (err) {
      throw new UsageError('BAD_ARGUMENT', `cannot read the TLS certificate or key: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    server = createHttpsServer({ cert, key });
  } else {
    server = createHttpServer();
  }

  const abort = new AbortController();
  const record = args.record;
  if (record !== null) await requireEncoder(record.encoder ?? 'auto', record.vaapiDevice);
  // A person is working in the page: when the remote goes away (a VM reboots, a server restarts), the page
  // says "reconnecting…" and deskrec tries again with backoff; the recording goes on in a new segment.
  const session = new Session(openSource(args.url, args.source), {
    record, signal: abort.signal, log, durationMs: args.durationS === null ? null : args.durationS * 1000,
    reconnect: { reopen: () => openSource(args.url, args.source), maxDelayMs: 10000 }, inputLog: args.inputLog,
  });
  // Before anything listens: an unwritable --capture directory fails here with exit 3.
  await session.start();

  const address = await listen(server, args.listen.host, args.listen.port);
  const secure = args.tls !== null;
  const viewer = new Viewer({
    token, cookie: cookieName(address.port), secure, sharedControl: args.sharedControl, log, desktopName: session.source.target,
  });
  viewer.attach(session);
  if (record !== null) viewer.setRecording({ dir: record.dir, startedAt: Date.now() });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!viewer.handleRequest(req, res)) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not found\n'); }
  });
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    if (!viewer.handleUpgrade(req, socket, head)) socket.destroy();
  });

  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${secure ? 'https' : 'http'}://${hostInUrl}:${address.port}/?token=${token}`;
  process.stderr.write(`deskrec: viewer at ${url}\n`);
  if (args.open) openBrowser(url, log);

  const onSignal = (): void => { abort.abort(); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { end, recording } = await session.done;
    if (!args.quiet) {
      const files = recording === null ? 'not recorded' : `${record?.dir ?? ''}: ${recording.segments.map((s) => s.file).join(', ') || 'no frames'}`;
      log(`viewer stopped after ${(end.t_ms / 1000).toFixed(1)} s (${end.reason}); ${files}`);
    }
    return EXIT.OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    viewer.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
  }
}
