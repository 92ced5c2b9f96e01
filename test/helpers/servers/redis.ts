/**
 * Debian's redis-server started for a test (the work queue of cluster mode, issue 14): loopback only, a
 * free port, its own temp dir holding config, log and data, `maxmemory-policy noeviction` unless a test asks
 * for another policy (BullMQ needs noeviction; the daemon must refuse to run without it), and append-only
 * persistence in that dir, so that `restart()` — or `kill()` and then `restart()` — brings back on the same
 * port what a real Redis restart brings back: every acknowledged write. Nothing is written outside the temp
 * dir. docs/TESTING.md ("Redis and S3") explains the choices.
 */
import { type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports';
import { exited, FatalError, pollUntil, requireCommand, spawnGroup, stopGroup } from './proc';
import { registerCleanup, signalGroup, trackDir } from './registry';

/** Redis's eviction policies (`maxmemory-policy`). */
export type RedisEvictionPolicy = 'noeviction' | 'allkeys-lru' | 'allkeys-lfu' | 'allkeys-random'
  | 'volatile-lru' | 'volatile-lfu' | 'volatile-random' | 'volatile-ttl';

/** How to start Redis. */
export interface RedisOptions {
  /** `maxmemory-policy` (default 'noeviction', what BullMQ needs). */
  maxmemoryPolicy?: RedisEvictionPolicy;
  /** `maxmemory`, e.g. '64mb' (default: no limit). */
  maxmemory?: string;
  /**
   * 'aof' (default): append-only file in the temp dir, fsync every second; acknowledged writes survive
   * `restart()` and `kill()` + `restart()` (a SIGKILLed Redis has already written them to the kernel).
   * 'none': no persistence; a restart comes back empty, like a Redis without AOF/RDB.
   */
  persistence?: 'aof' | 'none';
  /** Time limit for a start-up (default 20 s). */
  startTimeoutMs?: number;
}

/** A running Redis. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  host: '127.0.0.1';
  port: number;
  /** The temp dir (config, log, data). */
  dir: string;
  /** redis-server's log. */
  logFile: string;
  /** Milliseconds the first start-up took (spawn until PONG). */
  startupMs: number;
  /** The server process's pid (changes with every restart), or undefined while it is down. */
  pid(): number | undefined;
  /** True while the server process is alive. */
  running(): boolean;
  /**
   * Stops Redis if it runs (SIGTERM: a clean shutdown that flushes the AOF) and starts it again on the same
   * port with the same dir; resolves once it answers PING (after loading its data). Also brings back a
   * `kill()`ed server.
   */
  restart(): Promise<void>;
  /** SIGKILLs Redis (a crash: no shutdown code runs); resolves once it is gone. `restart()` brings it back. */
  kill(): Promise<void>;
  /** Stops Redis for good and deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Sends one RESP `PING` to 127.0.0.1:port and resolves with Redis's first reply line ('+PONG' when ready;
 * '-LOADING …' while it loads its data). Rejects on a connection error or after `timeoutMs`.
 */
export function pingRedis(port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => { finish(new Error(`no reply to PING within ${timeoutMs} ms`)); }, timeoutMs);
    const finish = (err: Error | undefined, line?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err); else resolve(line ?? '');
    };
    sock.once('error', (e) => { finish(e); });
    sock.once('connect', () => { sock.write('*1\r\n$4\r\nPING\r\n'); });
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end >= 0) finish(undefined, text.slice(0, end));
    });
    sock.once('close', () => { finish(new Error(`connection closed before a reply (got ${JSON.stringify(text)})`)); });
  });
}

/** Starts redis-server on 127.0.0.1 and a free port; resolves once it answers PING with PONG. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const redisServer = requireCommand('redis-server');
  const startTimeoutMs = opts.startTimeoutMs ?? 20000;
  const dir = mkdtempSync(join(tmpdir(), 'deskrec-redis-'));
  const untrackDir = trackDir(dir);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const logFile = join(dir, 'redis.log');
  const confFile = join(dir, 'redis.conf');
  let child: ChildProcess | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    if (child !== undefined) await stopGroup(child, 10000);
    rmSync(dir, { recursive: true, force: true });
    untrackDir();
  };
  const unregister = registerCleanup(`redis-server (${dir})`, stop);

  const alive = (c: ChildProcess | undefined): boolean => c !== undefined && c.exitCode === null && c.signalCode === null;

  /** Writes the config for `port` (the same file on every restart, so the server keeps its settings). */
  const writeConf = (port: number): void => {
    const lines = [
      // Loopback only (no unix socket unless asked), in the foreground as our child (no pid file, no supervision).
      'bind 127.0.0.1', `port ${port}`, 'protected-mode yes', 'daemonize no', 'supervised no',
      `logfile ${logFile}`, 'loglevel notice', 'always-show-logo no',
      // Everything the server writes stays in the temp dir.
      `dir ${dataDir}`,
      // RDB snapshots off: the AOF alone is the persistence, and a shutdown then writes no dump.rdb either.
      'save ""',
      ...(opts.persistence ?? 'aof') === 'aof'
        ? ['appendonly yes', 'appendfsync everysec', 'appenddirname appendonly']
        : ['appendonly no'],
      `maxmemory-policy ${opts.maxmemoryPolicy ?? 'noeviction'}`,
      ...opts.maxmemory !== undefined ? [`maxmemory ${opts.maxmemory}`] : [],
    ];
    writeFileSync(confFile, `${lines.join('\n')}\n`);
  };

  /**
   * Spawns redis-server on `port` and waits for PONG. A clash on the port ("Address already in use": another
   * worker took the free port first, or a killed server's socket lingers) is retried: with a new port on
   * the first start, with the same port (until the time limit) on a restart.
   */
  const launch = async (fixedPort: number | undefined): Promise<number> => {
    const deadline = Date.now() + startTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const port = fixedPort ?? await freeTcpPort();
      writeConf(port);
      const logSize = (() => { try { return readFileSync(logFile).length; } catch { return 0; } })();
      // redis-server writes to `logfile`; its stdout/stderr only carry errors from before the log is open.
      const early = openSync(join(dir, 'redis.stderr'), 'a');
      const c = spawnGroup(redisServer, [confFile], { stdio: ['ignore', early, early], env: process.env, cwd: dataDir });
      closeSync(early);
      child = c;
      try {
        await pollUntil(`redis-server on 127.0.0.1:${port} to answer PING`, Math.max(1000, deadline - Date.now()), async () => {
          if (!alive(c)) throw new FatalError(`redis-server exited (${c.exitCode ?? c.signalCode ?? '?'})`);
          const line = await pingRedis(port, 1000);
          return line === '+PONG' ? true : undefined;
        }, 50);
        return port;
      } catch (e) {
        await stopGroup(c, 1000);
        const newLog = (() => { try { return readFileSync(logFile, 'utf8').slice(logSize); } catch { return ''; } })();
        const clash = /Address already in use/i.test(newLog);
        if (!clash || Date.now() > deadline || (fixedPort === undefined && attempt >= 3)) {
          let early2 = '';
          try { early2 = readFileSync(join(dir, 'redis.stderr'), 'utf8').trim(); } catch { /* none */ }
          throw new Error(`redis-server failed to start: ${e instanceof Error ? e.message : String(e)}\n${logTail(logFile)}${early2 === '' ? '' : `\n${early2}`}`);
        }
      }
    }
  };

  try {
    const t0 = Date.now();
    const port = await launch(undefined);
    const startupMs = Date.now() - t0;
    const srv: RedisServer = {
      url: `redis://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
      dir,
      logFile,
      startupMs,
      pid: () => (alive(child) ? child?.pid : undefined),
      running: () => alive(child),
      async restart() {
        if (stopped) throw new Error('redis: restart() after stop()');
        // SIGTERM makes Redis shut down cleanly (AOF flushed and fsynced); 10 s before SIGKILL.
        if (child !== undefined) await stopGroup(child, 10000);
        await launch(port);
      },
      async kill() {
        const c = child;
        if (c === undefined || !alive(c) || c.pid === undefined) return;
        const gone = exited(c);
        signalGroup(c.pid, 'SIGKILL');
        await gone;
      },
      stop,
    };
    return srv;
  } catch (e) {
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n(cleaned up ${dir})`);
  }
}
