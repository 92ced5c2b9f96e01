/**
 * TigerVNC's Xvnc (an X server whose screen is served over RFB) started for a test: loopback only, the
 * security types asked for, its own X authority cookie, a solid root background, X clients run on it and
 * tracked (so they can be paused for a still screen and are killed on stop), and screenshots of the root
 * window through `xwd`. docs/TESTING.md explains each flag.
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ByteWriter } from '../../../src/wire/writer';
import { freeTcpPort } from './ports';
import { parseXwd, type RgbaImage } from './image';
import { exited, FatalError, requireCommand, runTool, spawnGroup, stopGroup } from './proc';
import { registerCleanup, signalGroup, trackDir } from './registry';
import { waitForRfb } from './rfb';

/** The security types TigerVNC 1.12's -SecurityTypes accepts. */
export type XvncSecurity = 'None' | 'VncAuth' | 'Plain' | 'TLSNone' | 'TLSVnc' | 'TLSPlain' | 'X509None' | 'X509Vnc' | 'X509Plain';

/** How to start Xvnc. */
export interface XvncOptions {
  width: number;
  height: number;
  /** Colour depth of the screen; 24 (default) gives a 32-bit TrueColor framebuffer. */
  depth?: 16 | 24 | 32;
  /** One or more security types, offered in this order. */
  security: XvncSecurity | XvncSecurity[];
  /** VNC password for VncAuth/TLSVnc/X509Vnc (8 characters at most count); a random one when omitted. */
  password?: string;
  /** Unix user allowed by the *Plain types (checked by PAM service `vnc`, i.e. a real account: docs/TESTING.md). */
  user?: string;
  /** Certificate and key (PEM) for the X509* types; a self-signed pair for 127.0.0.1 is made when omitted. */
  x509?: { certFile: string; keyFile: string };
  /** Root window colour for `xsetroot -solid` (default '#204060'). */
  background?: string;
  /**
   * 'hidden' (default): the root window gets a blank cursor and the pointer is parked on the bottom-right
   * pixel, so no pointer is drawn into the framebuffer (keep windows off that pixel). 'visible': X's
   * default cursor stays, at the screen centre.
   */
  pointer?: 'hidden' | 'visible';
  /** Extra Xvnc arguments (e.g. ['-AlwaysShared']). */
  extraArgs?: string[];
  /** Time limit for the whole start-up (default 20 s). */
  startTimeoutMs?: number;
  /**
   * The RFB port to listen on (default: a free one). For a server restarted where clients reconnect to;
   * a port still in use is retried until the start-up time limit (a killed server's socket may linger).
   */
  rfbPort?: number;
}

/** A running Xvnc. */
export interface XvncServer {
  /** X display number (DISPLAY=:display). */
  display: number;
  /** RFB port on host. */
  port: number;
  host: '127.0.0.1';
  /** Environment for X clients of this server (DISPLAY and XAUTHORITY set). */
  env: NodeJS.ProcessEnv;
  /** The VNC password, for the *Vnc security types. */
  password: string | undefined;
  /** CA file a client verifies the X509* types' certificate with (the self-signed certificate itself). */
  caFile: string | undefined;
  /** Xvnc's own log (stderr). */
  logFile: string;
  /** Stops the X clients and the server, deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
  /** The root window as RGBA, from `xwd -root -silent` (the pointer is not in it). */
  screenshotRgba(): Promise<RgbaImage>;
  /** Starts an X client on this display, as its own process group, tracked for pause/stop. */
  run(cmd: string, args: string[]): ChildProcess;
  /** SIGSTOPs every X client started through `run`, so the screen stops changing. */
  pauseClients(): void;
  /** SIGCONTs them again. */
  resumeClients(): void;
}

const needsPassword = (s: XvncSecurity): boolean => s === 'VncAuth' || s === 'TLSVnc' || s === 'X509Vnc';
const needsUser = (s: XvncSecurity): boolean => s.endsWith('Plain');
const needsCert = (s: XvncSecurity): boolean => s.startsWith('X509');

/** Writes an Xauthority file with one FamilyWild MIT-MAGIC-COOKIE-1 entry, valid for any display number. */
export function writeXauthority(file: string, cookie: Buffer): void {
  // FamilyWild, then address, display number, auth name and auth data, each with a big-endian u16 length.
  const w = new ByteWriter().u16(0xffff);
  for (const field of [new Uint8Array(0), new Uint8Array(0), Buffer.from('MIT-MAGIC-COOKIE-1', 'latin1'), cookie]) w.u16(field.length).bytes(field);
  writeFileSync(file, w.finish(), { mode: 0o600 });
}

/** Makes a self-signed P-256 certificate for CN=127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost) in `dir`. */
export async function makeSelfSignedCert(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await runTool(requireCommand('openssl'), ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { timeoutMs: 15000 });
  return { certFile, keyFile };
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Reads the display number Xvnc writes to its -displayfd pipe once it accepts X connections. */
function readDisplayFd(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const pipe = child.stdio[3];
    if (pipe === null || pipe === undefined || !('on' in pipe)) { reject(new Error('Xvnc: no -displayfd pipe')); return; }
    let text = '';
    const done = (err: Error | undefined, n?: number): void => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (err !== undefined) reject(err); else resolve(n ?? -1);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      done(new Error(`Xvnc exited during start-up (${code ?? signal ?? '?'})`));
    };
    const timer = setTimeout(() => { done(new Error(`Xvnc did not report its display within ${timeoutMs} ms`)); }, timeoutMs);
    child.once('exit', onExit);
    pipe.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^(\d+)\n/.exec(text);
      if (m !== null) done(undefined, Number(m[1]));
    });
  });
}

/**
 * Starts Xvnc listening for RFB on 127.0.0.1 only (a fresh port; retried on a clash), X clients only on its
 * unix socket, and returns once it has sent an RFB banner and the root background is set.
 */
export async function startXvnc(opts: XvncOptions): Promise<XvncServer> {
  const xvnc = requireCommand('Xvnc');
  const xsetroot = requireCommand('xsetroot');
  const xwd = requireCommand('xwd');
  const security = Array.isArray(opts.security) ? opts.security : [opts.security];
  if (security.length === 0) throw new Error('startXvnc: no security type');
  const startTimeoutMs = opts.startTimeoutMs ?? 20000;
  const deadline = Date.now() + startTimeoutMs;

  const dir = mkdtempSync(join(tmpdir(), 'deskrec-xvnc-'));
  const untrackDir = trackDir(dir);
  const logFile = join(dir, 'Xvnc.log');
  const clients = new Set<ChildProcess>();
  let server: ChildProcess | undefined;
  let stopped = false;
  // Registered before anything is started, so a failure half-way is cleaned up by the same path.
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregister();
    await Promise.all([...clients].map((c) => stopGroup(c, 2000)));
    if (server !== undefined) await stopGroup(server, 5000);
    rmSync(dir, { recursive: true, force: true });
    untrackDir();
  };
  const unregister = registerCleanup(`Xvnc (${dir})`, stop);

  try {
    const args = ['-geometry', `${opts.width}x${opts.height}`, '-depth', String(opts.depth ?? 24),
      '-interface', '127.0.0.1', '-nolisten', 'tcp', '-SecurityTypes', security.join(','),
      '-desktop', 'deskrec-test', '-AlwaysShared'];
    const cookie = randomBytes(16);
    const xauth = join(dir, 'Xauthority');
    writeXauthority(xauth, cookie);
    args.push('-auth', xauth);
    let password: string | undefined;
    if (security.some(needsPassword)) {
      password = opts.password ?? randomBytes(6).toString('base64url').slice(0, 8);
      const passwd = join(dir, 'passwd');
      const obf = await runTool(requireCommand('vncpasswd'), ['-f'], { input: `${password}\n`, timeoutMs: 5000 });
      writeFileSync(passwd, obf.stdout, { mode: 0o600 });
      args.push('-PasswordFile', passwd);
    }
    if (security.some(needsUser)) {
      if (opts.user === undefined) throw new Error(`startXvnc: ${security.join(',')} needs opts.user (a PAM-valid account)`);
      args.push('-PlainUsers', opts.user);
    }
    let caFile: string | undefined;
    if (security.some(needsCert)) {
      const pair = opts.x509 ?? await makeSelfSignedCert(dir);
      args.push('-X509Cert', pair.certFile, '-X509Key', pair.keyFile);
      caFile = pair.certFile;
    }
    args.push(...(opts.extraArgs ?? []));

    let display = -1;
    let port = -1;
    for (let attempt = 1; ; attempt++) {
      port = opts.rfbPort ?? await freeTcpPort();
      const log = openSync(logFile, 'a');
      const child = spawnGroup(xvnc, ['-displayfd', '3', '-rfbport', String(port), ...args],
        { stdio: ['ignore', log, log, 'pipe'], env: process.env });
      closeSync(log);
      server = child;
      try {
        display = await readDisplayFd(child, Math.max(1000, deadline - Date.now()));
        await waitForRfb('127.0.0.1', port, Math.max(1000, deadline - Date.now()), () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new FatalError('Xvnc exited');
        });
        break;
      } catch (e) {
        await stopGroup(child, 1000);
        const tail = logTail(logFile);
        const clash = /Address already in use|already active/i.test(tail);
        if (!clash || (attempt >= 3 && opts.rfbPort === undefined) || Date.now() > deadline) {
          throw new Error(`Xvnc failed to start: ${e instanceof Error ? e.message : String(e)}\n${tail}`);
        }
      }
    }

    const env: NodeJS.ProcessEnv = { ...process.env, DISPLAY: `:${display}`, XAUTHORITY: xauth };
    const rootArgs = ['-solid', opts.background ?? '#204060'];
    if ((opts.pointer ?? 'hidden') === 'hidden') {
      const blank = join(dir, 'blank.xbm');
      writeFileSync(blank, `#define blank_width 16\n#define blank_height 16\nstatic unsigned char blank_bits[] = {\n${Array.from({ length: 32 }, () => '0x00').join(', ')} };\n`);
      rootArgs.push('-cursor', blank, blank);
      await runTool(requireCommand('xdotool'), ['mousemove', String(opts.width - 1), String(opts.height - 1)], { env, timeoutMs: 5000 });
    }
    await runTool(xsetroot, rootArgs, { env, timeoutMs: 5000 });
    const srv: XvncServer = {
      display, port, host: '127.0.0.1', env, password, caFile, logFile,
      stop,
      async screenshotRgba() {
        const r = await runTool(xwd, ['-root', '-silent'], { env, timeoutMs: 15000 });
        return parseXwd(r.stdout);
      },
      run(cmd, cargs) {
        if (stopped) throw new Error('Xvnc: run() after stop()');
        const c = spawnGroup(cmd, cargs, { env, stdio: 'ignore' });
        clients.add(c);
        void exited(c).then(() => { clients.delete(c); });
        return c;
      },
      pauseClients() {
        for (const c of clients) if (c.pid !== undefined) signalGroup(c.pid, 'SIGSTOP');
      },
      resumeClients() {
        for (const c of clients) if (c.pid !== undefined) signalGroup(c.pid, 'SIGCONT');
      },
    };
    return srv;
  } catch (e) {
    await stop();
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n(cleaned up ${dir})`);
  }
}
