/**
 * `deskrec daemon --config FILE`: the recording daemon as a process. Logs are JSON lines (pino) on stdout,
 * each with the recording id where there is one; SIGHUP reloads the configuration (a broken one is logged
 * and the running one kept), SIGTERM and SIGINT drain (every recording finished) and exit 0.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { describeError, UsageError } from '../errors';
import { buildApi } from '../daemon/api';
import { loadConfig, type DaemonConfig } from '../daemon/config';
import { Daemon } from '../daemon/daemon';
import { registerPage } from '../daemon/page';
import { EXIT } from './exit-codes';

/** Loopback addresses: anything else needs TLS or an explicit `insecure-listen`. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The token: the first line of the token file, at least 16 characters. */
function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError('TOKEN_FILE', `cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const token = (text.split(/\r?\n/)[0] ?? '').trim();
  if (token.length < 16) throw new UsageError('TOKEN_FILE', `the token in ${file} is shorter than 16 characters (make one with: head -c 32 /dev/urandom | base64 > ${file})`);
  return token;
}

function readTls(c: DaemonConfig): { cert: Buffer; key: Buffer } | undefined {
  const tls = c.api.tls;
  if (tls === undefined) return undefined;
  try {
    return { cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
  } catch (err) {
    throw new UsageError('TLS_FILE', `cannot read the API's TLS certificate or key: ${describeError(err)}`);
  }
}

/** Runs the daemon until SIGTERM/SIGINT; resolves to the exit code. */
export async function runDaemon(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { config: { type: 'string' }, 'log-level': { type: 'string' } } }).values;
  } catch (err) {
    throw new UsageError('BAD_ARGUMENT', (err as Error).message);
  }
  const file = values.config;
  if (file === undefined || file === '') throw new UsageError('BAD_ARGUMENT', 'daemon needs --config FILE (YAML or JSON; see docs/DAEMON.md)');
  const level = values['log-level'] ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug'].includes(level)) throw new UsageError('BAD_ARGUMENT', `--log-level must be error, warn, info or debug, got '${level}'`);
  const config = loadConfig(file);
  const { host, port } = config.api.listen;
  if (!isLoopback(host) && config.api.tls === undefined && !config.api['insecure-listen']) {
    throw new UsageError('INSECURE_LISTEN', `api.listen ${host} is not a loopback address: configure api.tls (cert, key) or set api.insecure-listen: true`);
  }
  const token = readToken(config.api['token-file']);
  const https = readTls(config);
  const log = pino({ level, base: { pid: process.pid } });

  const daemon = new Daemon(config, log);
  await daemon.start();
  const app = await buildApi({
    daemon, token, log, metrics: config.metrics, secure: https !== undefined, https,
    // The recordings page (list, player, live view) beside the API, behind the same token.
    extend: (api, auth) => { registerPage(api, { daemon, auth, token, secure: https !== undefined, log }); },
  });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await daemon.drain(5000);
    throw new UsageError('LISTEN_FAILED', `cannot listen on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`);
  }
  const address = app.server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  log.info({ listen: `${host}:${actual}`, root: config.storage.root, targets: config.targets.length }, 'deskrec daemon listening');
  process.stderr.write(`deskrec: daemon at ${https === undefined ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${actual}/ (storage ${config.storage.root})\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onHup = (): void => {
      let next: DaemonConfig;
      try {
        next = loadConfig(file);
      } catch (err) {
        log.error(`configuration not reloaded: ${describeError(err)}`);
        return;
      }
      log.info('reloading the configuration');
      void daemon.reload(next).catch((err: unknown) => { log.error(`reload failed: ${describeError(err)}`); });
    };
    const onStop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'draining: finishing every recording');
      void (async (): Promise<void> => {
        const late = await daemon.drain();
        if (late.length > 0) log.error({ recordings: late }, 'drain timeout: these recordings had not finished (their MP4s stay fragmented and playable)');
        await app.close().catch(() => undefined);
        log.info('stopped');
        process.off('SIGHUP', onHup);
        resolve(late.length > 0 ? EXIT.OUTPUT : EXIT.OK);
      })();
    };
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => { onStop('SIGTERM'); });
    process.once('SIGINT', () => { onStop('SIGINT'); });
  });
}
