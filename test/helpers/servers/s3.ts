/**
 * A real S3-compatible object store for a test (cluster mode's storage, issue 14): OpenStack Swift from
 * Debian — its proxy with the s3api and tempauth middlewares in front of real account, container and object
 * servers — on loopback, each a child process on a free port, with one-replica rings and one device in the
 * helper's temp dir, and memcached (tempauth keeps its tokens there; the proxy caches account and container
 * info there). Every S3 call of a test goes through Swift's s3api to an object server writing files.
 *
 * Nothing of the system's Swift installation is used but the code: the configs, swift.conf (with a random
 * hash path suffix), the rings and the data all live in the temp dir, and the servers are started by a small
 * Python launcher (written to the temp dir) that points Swift at that swift.conf, because Swift otherwise
 * always reads /etc/swift/swift.conf. docs/TESTING.md ("Redis and S3") explains the choices.
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort } from './ports';
import { FatalError, pollUntil, requireCommand, runTool, spawnGroup, stopGroup } from './proc';
import { registerCleanup, signalGroup, trackDir } from './registry';

/** How to start the object store. */
export interface S3Options {
  /** The region s3api answers for and checks in SigV4 signatures (s3api's `location`; default 'us-east-1'). */
  region?: string;
  /**
   * Where the temp dir goes (default: the OS temp dir). Swift keeps object metadata in user extended
   * attributes, so this file system must support them; start-up checks and says so otherwise.
   */
  parentDir?: string;
  /** Swift's log level (default 'INFO': one line per request in the logs). */
  logLevel?: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
  /** Time limit for one start-up of all servers (default 60 s: four Python servers on two busy cores). */
  startTimeoutMs?: number;
}

/** One object as Swift's own API (not s3api) reports it. */
export interface SwiftObjectInfo {
  /** Size in bytes (Content-Length). */
  size: number;
  /** Swift's ETag: the MD5 of the content for a plain object; for a multipart upload, s3api's SLO manifest's. */
  etag: string;
  /** All response headers, lower-case names. */
  headers: Record<string, string>;
}

/** A running object store. */
export interface S3Server {
  /** `http://127.0.0.1:PORT` (path-style only: set `forcePathStyle: true`). */
  endpoint: string;
  host: '127.0.0.1';
  port: number;
  region: string;
  /** tempauth's user `test:tester` is the S3 access key … */
  accessKey: string;
  /** … and its key `testing` the S3 secret key. */
  secretKey: string;
  /** The temp dir (etc/: configs and rings; srv/: the device; log/: one log per server). */
  dir: string;
  /** Milliseconds the first start-up took (temp dir until every server answered /healthcheck). */
  startupMs: number;
  /** Creates a bucket (a Swift container of account AUTH_test) through Swift's own API, not through s3api. */
  createBucket(name: string): Promise<void>;
  /** An object as Swift's own API sees it (HEAD /v1/AUTH_test/bucket/key), or undefined when there is none. */
  objectInfo(bucket: string, key: string): Promise<SwiftObjectInfo | undefined>;
  /** The object names in a bucket (Swift's JSON container listing), optionally under a prefix. */
  listObjects(bucket: string, prefix?: string): Promise<{ name: string; bytes: number; hash: string }[]>;
  /** SIGSTOPs the proxy: connections are accepted by the kernel but nothing answers (a hung endpoint). */
  pause(): void;
  /** SIGCONTs the proxy. */
  resume(): void;
  /** Stops every Swift server and memcached (connections refused); the data stays. */
  down(): Promise<void>;
  /** Starts them again on the same ports with the same rings and data; resolves when all are ready. */
  up(): Promise<void>;
  /** True between `down()` and `up()`. */
  isDown(): boolean;
  /** The last lines of one server's log ('proxy', 'account', 'container', 'object', 'memcached'). */
  logTail(server: SwiftProcessName, lines?: number): string;
  /** Stops everything for good and deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

/** The processes of the object store. */
export type SwiftProcessName = 'proxy' | 'account' | 'container' | 'object' | 'memcached';

const ACCOUNT = 'test';
const USER = 'tester';
const KEY = 'testing';

/**
 * The Python side, run with Debian's python3 and its python3-swift: `rings ETC A C O` builds the account,
 * container and object rings (one device 127.0.0.1:PORT/d1, one replica) with Swift's own RingBuilder in one
 * process (nine `swift-ring-builder` runs would cost seconds of interpreter start-ups); `serve ETC SECTION
 * CONF` runs one server in the foreground (workers = 0) the way /usr/bin/swift-*-server do, after pointing
 * Swift at ETC/swift.conf instead of /etc/swift/swift.conf.
 */
const LAUNCHER = `import sys


def rings(etc, ports):
    from swift.common.ring import RingBuilder
    for name, port in zip(('account', 'container', 'object'), ports):
        # part power 6 (64 partitions), 1 replica, min_part_hours 1
        builder = RingBuilder(6, 1, 1)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
                         'replication_ip': '127.0.0.1', 'replication_port': int(port),
                         'device': 'd1', 'weight': 1.0, 'meta': ''})
        builder.rebalance(seed=1)
        builder.get_ring().save('%s/%s.ring.gz' % (etc, name))
    return 0


def serve(etc, section, conf):
    from swift.common import utils
    # Before anything reads swift.conf: ours (hash path suffix, policies, constraints), not /etc/swift's.
    utils.set_swift_dir(etc)
    from swift.common import constraints, storage_policy
    constraints.reload_constraints()
    storage_policy.reload_storage_policies()
    from swift.common.wsgi import run_wsgi
    kwargs = {'verbose': True}
    if section == 'object-server':
        from swift.obj import server
        kwargs['global_conf_callback'] = server.global_conf_callback
    return run_wsgi(conf, section, **kwargs)


if __name__ == '__main__':
    if sys.argv[1] == 'rings':
        sys.exit(rings(sys.argv[2], sys.argv[3:6]))
    sys.exit(serve(sys.argv[2], sys.argv[3], sys.argv[4]))
`;

/** Checks that `dir`'s file system takes user extended attributes (Swift stores object metadata in them). */
async function checkXattrs(python: string, dir: string): Promise<void> {
  const probe = join(dir, 'xattr-probe');
  writeFileSync(probe, '');
  try {
    await runTool(python, ['-c', 'import os, sys; os.setxattr(sys.argv[1], "user.deskrec.probe", b"1"); assert os.getxattr(sys.argv[1], "user.deskrec.probe") == b"1"', probe], { timeoutMs: 15000 });
  } catch (e) {
    throw new Error(`${dir}: this file system does not take user extended attributes, which Swift's object server needs; `
      + `start the object store with parentDir on one that does (ext4, xfs, btrfs, or tmpfs on Linux ≥ 6.6): ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    rmSync(probe, { force: true });
  }
}

/** GET http://127.0.0.1:port/healthcheck answered 200 "OK" (the healthcheck middleware, first in each pipeline). */
async function healthy(port: number): Promise<boolean> {
  const ctl = new AbortController();
  const timer = setTimeout(() => { ctl.abort(); }, 1000);
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: ctl.signal });
    const body = await r.text();
    return r.status === 200 && body === 'OK';
  } finally {
    clearTimeout(timer);
  }
}

/** memcached answered `version` on 127.0.0.1:port. */
function memcachedVersion(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => { done(new Error('no reply to "version"')); }, 1000);
    const done = (err: Error | undefined, v?: string): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err); else resolve(v ?? '');
    };
    sock.once('error', (e) => { done(e); });
    sock.once('connect', () => { sock.write('version\r\n'); });
    sock.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^VERSION (\S+)\r\n/.exec(text);
      if (m !== null) done(undefined, m[1]);
    });
  });
}

/** The INI text of one server's paste.deploy config. */
function ini(sections: Record<string, Record<string, string>>): string {
  return Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
    .join('\n');
}

/**
 * Starts memcached, the account, container and object servers and the proxy (s3api + tempauth), each on a
 * free port on 127.0.0.1, and resolves once all of them answer (healthcheck / `version`).
 */
export async function startS3(opts: S3Options = {}): Promise<S3Server> {
  const t0 = Date.now();
  // Debian's python3, the interpreter of /usr/bin/swift-*-server and the one that has python3-swift
  // (a `python3` earlier on PATH may be another build without it).
  const python = '/usr/bin/python3';
  if (!existsSync(python)) throw new Error(`${python} is not installed: run scripts/install-test-tools.sh (docs/TESTING.md)`);
  const memcached = requireCommand('memcached');
  // The Swift servers are run through our launcher, but their presence is what install-test-tools checks.
  for (const tool of ['swift-proxy-server', 'swift-account-server', 'swift-container-server', 'swift-object-server']) requireCommand(tool);
  const region = opts.region ?? 'us-east-1';
  const startTimeoutMs = opts.startTimeoutMs ?? 60000;
  const logLevel = opts.logLevel ?? 'INFO';

  const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'deskrec-swift-'));
  const untrackDir = trackDir(dir);
  const etc = join(dir, 'etc');
  const srv = join(dir, 'srv');
  const logDir = join(dir, 'log');
  const children = new Map<SwiftProcessName, ChildProcess>();
  let stopped = false;
  let down = false;

  const stopChildren = async (): Promise<void> => {
    // The proxy first, so no request reaches a half-stopped store; then the rest together.
    const proxy = children.get('proxy');
    if (proxy !== undefined) await stopGroup(proxy, 5000);
    await Promise.all([...children.values()].map((c) => stopGroup(c, 5000)));
    children.clear();
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    await stopChildren();
    rmSync(dir, { recursive: true, force: true });
    untrackDir();
  };
  const unregister = registerCleanup(`Swift S3 (${dir})`, stop);

  const logFile = (name: SwiftProcessName): string => join(logDir, `${name}.log`);
  const tail = (name: SwiftProcessName, lines = 15): string => {
    try {
      return readFileSync(logFile(name), 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  try {
    const py = python;
    for (const d of [etc, srv, join(srv, 'd1'), logDir, join(dir, 'cache'), join(dir, 'lock')]) mkdirSync(d, { recursive: true });
    await checkXattrs(py, join(srv, 'd1'));

    const ports = {
      proxy: await freeTcpPort(), account: await freeTcpPort(), container: await freeTcpPort(),
      object: await freeTcpPort(), memcached: await freeTcpPort(),
    };
    const launcher = join(etc, 'deskrec_swift.py');
    writeFileSync(launcher, LAUNCHER);
    // A random hash path suffix, as every Swift cluster must have; policy 0 is the only (default) policy.
    writeFileSync(join(etc, 'swift.conf'), ini({
      'swift-hash': { swift_hash_path_suffix: randomBytes(16).toString('hex'), swift_hash_path_prefix: '' },
      'storage-policy:0': { name: 'Policy-0', default: 'yes' },
    }));
    await runTool(py, [launcher, 'rings', etc, String(ports.account), String(ports.container), String(ports.object)], { timeoutMs: 30000 });

    const user = userInfo().username;
    // Settings every server shares: loopback, one process (workers = 0: no forked workers to chase), our
    // swift dir, the current user (Swift would otherwise switch to user `swift`, who cannot write here),
    // logs to stderr (`verbose`, captured into log/NAME.log); log_address names no socket, so Swift's
    // syslog copy goes to UDP localhost:514 (dropped) instead of into the host's /dev/log.
    const common = (name: SwiftProcessName): Record<string, string> => ({
      bind_ip: '127.0.0.1', bind_port: String(ports[name]), workers: '0', user, swift_dir: etc,
      log_level: logLevel, log_name: name, log_address: join(dir, 'no-syslog'),
    });
    const storage = (name: 'account' | 'container' | 'object', extra: Record<string, string> = {}): string => ini({
      // mount_check off: the device is a plain dir, not a mount point. No fallocate reserve: a nearly full
      // disk of a CI machine should not turn into 507 Insufficient Storage.
      DEFAULT: { ...common(name), devices: srv, mount_check: 'false', fallocate_reserve: '0', disable_fallocate: 'true',
        recon_cache_path: join(dir, 'cache'), ...extra },
      'pipeline:main': { pipeline: `healthcheck ${name}-server` },
      [`app:${name}-server`]: { use: `egg:swift#${name}` },
      'filter:healthcheck': { use: 'egg:swift#healthcheck' },
    });
    writeFileSync(join(etc, 'account-server.conf'), storage('account'));
    writeFileSync(join(etc, 'container-server.conf'), storage('container'));
    writeFileSync(join(etc, 'object-server.conf'), storage('object'));
    writeFileSync(join(etc, 'proxy-server.conf'), ini({
      DEFAULT: common('proxy'),
      // The pipeline of Swift's s3api docs, cut to what S3 needs: s3api before the auth middleware, SLO after
      // it (multipart uploads are SLO manifests), and the middlewares the proxy would insert anyway.
      'pipeline:main': { pipeline: 'catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server' },
      // account_autocreate: AUTH_test comes into being with its first container.
      'app:proxy-server': { use: 'egg:swift#proxy', account_autocreate: 'true' },
      'filter:catch_errors': { use: 'egg:swift#catch_errors' },
      'filter:gatekeeper': { use: 'egg:swift#gatekeeper' },
      'filter:healthcheck': { use: 'egg:swift#healthcheck' },
      'filter:proxy-logging': { use: 'egg:swift#proxy_logging' },
      'filter:cache': { use: 'egg:swift#memcache', memcache_servers: `127.0.0.1:${ports.memcached}` },
      'filter:listing_formats': { use: 'egg:swift#listing_formats' },
      // location: the region in SigV4 scopes; no storage_domain, so only path-style bucket addressing.
      'filter:s3api': { use: 'egg:swift#s3api', location: region },
      // test:tester with key testing, an admin of account AUTH_test; S3 access key "test:tester", secret "testing".
      'filter:tempauth': { use: 'egg:swift#tempauth', [`user_${ACCOUNT}_${USER}`]: `${KEY} .admin` },
      'filter:copy': { use: 'egg:swift#copy' },
      'filter:slo': { use: 'egg:swift#slo' },
      'filter:dlo': { use: 'egg:swift#dlo' },
      'filter:versioned_writes': { use: 'egg:swift#versioned_writes' },
    }));

    const alive = (c: ChildProcess | undefined): boolean => c !== undefined && c.exitCode === null && c.signalCode === null;

    const spawnOne = (name: SwiftProcessName): ChildProcess => {
      const log = openSync(logFile(name), 'a');
      const c = name === 'memcached'
        // -U 0: no UDP; 16 MB, one thread: it only holds tokens and account/container info. memcached
        // refuses to run as root without -u.
        ? spawnGroup(memcached, ['-l', '127.0.0.1', '-p', String(ports.memcached), '-U', '0', '-m', '16', '-t', '1', '-u', user],
          { stdio: ['ignore', log, log], env: process.env })
        : spawnGroup(py, [launcher, 'serve', etc, `${name}-server`, join(etc, `${name}-server.conf`)],
          { stdio: ['ignore', log, log], env: { ...process.env, PYTHONUNBUFFERED: '1' }, cwd: dir });
      closeSync(log);
      children.set(name, c);
      return c;
    };

    /**
     * Starts all five processes together and waits until each answers. Swift's servers retry binding
     * their port for 30 s (`bind_timeout`), which covers a port still held by a just-stopped server; a port
     * another program took meanwhile shows as that server's error in its log.
     */
    const startAll = async (): Promise<void> => {
      const names: SwiftProcessName[] = ['memcached', 'account', 'container', 'object', 'proxy'];
      for (const n of names) spawnOne(n);
      await Promise.all(names.map((n) => pollUntil(`${n} on 127.0.0.1:${ports[n]}`, startTimeoutMs, async () => {
        const c = children.get(n);
        if (!alive(c)) throw new FatalError(`${n} exited (${c?.exitCode ?? c?.signalCode ?? '?'}):\n${tail(n)}`);
        if (n === 'memcached') return (await memcachedVersion(ports.memcached)) !== '' ? true : undefined;
        return (await healthy(ports[n])) ? true : undefined;
      }, 50)));
    };

    await startAll();
    const startupMs = Date.now() - t0;

    const swiftBase = `http://127.0.0.1:${ports.proxy}`;
    /** A tempauth token and storage URL (fetched per call: tokens live in memcached, which `down()` empties). */
    const auth = async (): Promise<{ token: string; url: string }> => {
      const r = await fetch(`${swiftBase}/auth/v1.0`, { headers: { 'X-Auth-User': `${ACCOUNT}:${USER}`, 'X-Auth-Key': KEY } });
      await r.arrayBuffer();
      const token = r.headers.get('x-auth-token');
      const url = r.headers.get('x-storage-url');
      if (r.status !== 200 || token === null || url === null) throw new Error(`tempauth: HTTP ${r.status}`);
      return { token, url };
    };
    const objectPath = (url: string, bucket: string, key?: string): string =>
      `${url}/${encodeURIComponent(bucket)}${key === undefined ? '' : `/${key.split('/').map(encodeURIComponent).join('/')}`}`;

    const server: S3Server = {
      endpoint: swiftBase,
      host: '127.0.0.1',
      port: ports.proxy,
      region,
      accessKey: `${ACCOUNT}:${USER}`,
      secretKey: KEY,
      dir,
      startupMs,
      async createBucket(name) {
        const a = await auth();
        const r = await fetch(objectPath(a.url, name), { method: 'PUT', headers: { 'X-Auth-Token': a.token } });
        await r.arrayBuffer();
        if (r.status !== 201 && r.status !== 202) throw new Error(`createBucket(${name}): HTTP ${r.status}`);
      },
      async objectInfo(bucket, key) {
        const a = await auth();
        const r = await fetch(objectPath(a.url, bucket, key), { method: 'HEAD', headers: { 'X-Auth-Token': a.token } });
        if (r.status === 404) return undefined;
        if (r.status !== 200) throw new Error(`objectInfo(${bucket}/${key}): HTTP ${r.status}`);
        const headers: Record<string, string> = {};
        r.headers.forEach((v, k) => { headers[k] = v; });
        return { size: Number(headers['content-length']), etag: (headers.etag ?? '').replace(/"/g, ''), headers };
      },
      async listObjects(bucket, prefix) {
        const a = await auth();
        const q = new URLSearchParams({ format: 'json', ...prefix !== undefined ? { prefix } : {} });
        const r = await fetch(`${objectPath(a.url, bucket)}?${q.toString()}`, { headers: { 'X-Auth-Token': a.token } });
        if (r.status !== 200) throw new Error(`listObjects(${bucket}): HTTP ${r.status}`);
        const list = await r.json() as { name: string; bytes: number; hash: string }[];
        return list.map((o) => ({ name: o.name, bytes: o.bytes, hash: o.hash }));
      },
      pause() {
        const p = children.get('proxy')?.pid;
        if (p !== undefined) signalGroup(p, 'SIGSTOP');
      },
      resume() {
        const p = children.get('proxy')?.pid;
        if (p !== undefined) signalGroup(p, 'SIGCONT');
      },
      async down() {
        if (stopped) throw new Error('S3: down() after stop()');
        down = true;
        await stopChildren();
      },
      async up() {
        if (stopped) throw new Error('S3: up() after stop()');
        if (!down) return;
        await startAll();
        // Each process answering its health check is not yet a store that takes writes: in one clean-clone CI
        // run (2026-12-06, a loaded 2-core machine) every upload got 503 for more than 30 s after that. Ready
        // means an object written through the proxy, in a container of its own (tests list their buckets).
        await pollUntil('Swift takes a write after up()', startTimeoutMs, async () => {
          try {
            const a = await auth();
            const c = await fetch(objectPath(a.url, 'deskrec-ready'), { method: 'PUT', headers: { 'X-Auth-Token': a.token } });
            await c.arrayBuffer();
            if (c.status !== 201 && c.status !== 202) return undefined;
            const o = await fetch(objectPath(a.url, 'deskrec-ready', 'probe'), { method: 'PUT', headers: { 'X-Auth-Token': a.token }, body: 'ready' });
            await o.arrayBuffer();
            return o.status === 201 ? true : undefined;
          } catch {
            return undefined;
          }
        }, 200);
        down = false;
      },
      isDown: () => down,
      logTail: tail,
      stop,
    };
    return server;
  } catch (e) {
    const logs = (['proxy', 'account', 'container', 'object', 'memcached'] as const).map((n) => `--- ${n}:\n${tail(n, 8)}`).join('\n');
    await stop();
    throw new Error(`Swift S3 failed to start: ${e instanceof Error ? e.message : String(e)}\n${logs}\n(cleaned up ${dir})`);
  }
}
