/**
 * QEMU's built-in SPICE server for a test: a PC (TCG) booting the tiny Linux guest of `guest.ts` with a QXL
 * or standard VGA, SPICE on 127.0.0.1 only (optionally with a password and a TLS port), driven and
 * screenshotted over QMP, plus `spicy-screenshot` (spice-gtk) as a second, independent screenshot over
 * SPICE itself. docs/TESTING.md ("SPICE") explains each flag and the quirks.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { buildAgentGuest, buildGuest, guestCmdline, GUEST_AGENT_READY, GUEST_AGENT_XORG_READY, GUEST_SHELL_READY, type GuestAgentX, type GuestImage, type GuestMode } from './guest';
import { countDifferentPixels, parsePpm, type RgbaImage } from './image';
import { FatalError, pollUntil, requireCommand, runTool, sleep, spawnGroup, stopGroup } from './proc';
import { freeTcpPort } from './ports';
import { QemuRun } from './qemu';
import { QmpClient, type Json } from './qmp';

/** `-spice image-compression=` values QEMU 7.2 accepts (it rejects `lz4`: "invalid image compression"). */
export type SpiceImageCompression = 'off' | 'auto_glz' | 'auto_lz' | 'quic' | 'glz' | 'lz';
/** `-spice jpeg-wan-compression=` / `zlib-glz-wan-compression=` values. */
export type SpiceWanCompression = 'auto' | 'never' | 'always';
/** `-spice streaming-video=` values. */
export type SpiceStreamingVideo = 'off' | 'all' | 'filter';

/** How to start QEMU with SPICE. */
export interface SpiceOptions {
  /** `qxl`: the QXL device (the guest's qxl DRM driver sends QXL draw commands); `std`: Bochs VGA (QEMU's "simple display" path). */
  vga: 'qxl' | 'std';
  imageCompression?: SpiceImageCompression;
  jpegWanCompression?: SpiceWanCompression;
  zlibGlzWanCompression?: SpiceWanCompression;
  streamingVideo?: SpiceStreamingVideo;
  /** SPICE ticket (password-secret); without it ticketing is disabled (any ticket is accepted). */
  password?: string;
  /** Also listen with TLS on `tlsPort`, with a certificate for 127.0.0.1 signed by a fresh CA (`caFile`). */
  tls?: boolean;
  /** The guest to boot (default: `buildGuest()`, the cached build; `buildAgentGuest()` in `agent` mode). */
  guest?: GuestImage;
  /**
   * What the guest shows (default `text`); `photo`: the animated gradient picture; `shell`: an interactive
   * shell on the console (`guestCmdline`).
   */
  guestMode?: GuestMode;
  /**
   * `agent` mode: the guest's X server (default `xvfb`). `xorg` runs Xorg on the QXL display (`vga: 'qxl'`
   * only), so XRandR mode changes (xrandr in the guest, or a client's monitors config, which the guest
   * applies on the qxl driver's hot-plug event) resize the SPICE display; `waitForAgent` then also waits
   * for Xorg.
   */
  agentX?: GuestAgentX;
  /**
   * Give the guest a serial port (its /dev/ttyS0) written to a file: `serialText`, `waitForSerial`.
   * Default: on in `shell` mode (the shell reports there), off otherwise (text and photo boot as they
   * always did, with no serial port).
   */
  serial?: boolean;
  /**
   * Also make the serial port writable: a Unix socket chardev (`serialSocket`; QEMU still logs what the
   * guest writes to `serialFile`), so `serialWrite`/`serialRun` can type on the guest's /dev/ttyS0.
   * Default: on in `agent` mode (its shell reads commands there), off otherwise. Implies `serial`.
   */
  serialSocket?: boolean;
  /** More kernel command-line arguments, after the mode's. */
  append?: string;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
  /** Time limit for start-up up to a listening SPICE port (default 20 s; waitForText has its own). */
  startTimeoutMs?: number;
}

/** Picture size the guest's DRM driver sets on each device (measured; docs/TESTING.md). */
export const GUEST_SCREEN_SIZE = { qxl: { width: 1024, height: 768 }, std: { width: 1280, height: 800 } } as const;

/** A running QEMU with SPICE. */
export interface SpiceServer {
  host: '127.0.0.1';
  /** Plain SPICE port. */
  port: number;
  /** TLS port (with `tls: true`). */
  tlsPort: number | undefined;
  /** CA certificate (PEM) the TLS port's certificate is signed by (with `tls: true`). */
  caFile: string | undefined;
  /** The SPICE password, if one was set. */
  password: string | undefined;
  vga: 'qxl' | 'std';
  /** What the guest shows. */
  guestMode: GuestMode;
  /** The QMP session (`query-spice`, `stop`, `cont`, `screendump`, `send-key`…). */
  qmp: QmpClient;
  /** QEMU's version, e.g. "7.2.22". */
  version: string;
  /** QEMU's stdout/stderr. */
  logFile: string;
  /** Where the guest's serial port (/dev/ttyS0) is written, with `serial` (default in `shell` mode). */
  serialFile: string | undefined;
  /** The Unix socket QEMU's serial chardev listens on, with `serialSocket` (default in `agent` mode). */
  serialSocket: string | undefined;
  /** The full QEMU command line (for reports). */
  commandLine: string[];
  /** The guest that was booted. */
  guest: GuestImage;
  /** The screen as RGBA via QMP `screendump` (PPM). See `pause` for QXL's stale-while-paused quirk. */
  screenshotRgba(): Promise<RgbaImage>;
  /**
   * The screen as a SPICE client sees it: `spicy-screenshot` (spice-gtk) over the plain port (or the TLS
   * port, trusting `caFile`), with the server's password unless another is given. Rejects when
   * spicy-screenshot fails (e.g. a wrong password: it exits 1 with "main channel event: 23").
   */
  spicyScreenshotRgba(how?: { tls?: boolean; password?: string }): Promise<RgbaImage>;
  /**
   * Polls `screendump` until the guest's coloured text is on the screen (at least 3 saturated colours, not
   * the 720x400 text mode or SeaBIOS's grey) — in `photo` mode until its picture is (at least 1000
   * saturated colours; in `shell` mode the banner's colours count as text: use `waitForShell` to know the
   * shell reads keys); resolves with that picture and the ms since QEMU was started.
   */
  waitForText(timeoutMs?: number): Promise<{ image: RgbaImage; bootMs: number }>;
  /**
   * Holds the screen still and pauses the guest. `std`: QMP `stop`. `qxl`: first Ctrl-S to the guest's
   * console (the printing loop blocks), then waits until two running screendumps are equal, then `stop`:
   * with QXL a screendump of a stopped VM repeats the last one taken while it ran, it does not show what
   * the guest drew since (the SPICE client does). In `photo` mode both devices take the Ctrl-S way (the
   * animation loop writes a no-op escape to the console after each frame, so it blocks there too): a
   * plain `stop` could cut a frame in half, and the half QEMU shows may not have reached spice-server.
   */
  pause(): Promise<void>;
  /** QMP `cont` (and Ctrl-Q where `pause` sent Ctrl-S). */
  resume(): Promise<void>;
  /** Ctrl-S to the guest console: its text stops while the VM keeps running. */
  holdOutput(): Promise<void>;
  /** Ctrl-Q to the guest console: the text goes on. */
  releaseOutput(): Promise<void>;
  /**
   * Everything the guest wrote to its serial port so far ('' before anything or without `serial`), as QEMU
   * logged it. Once serialWrite/serialRun has connected to the port's socket, a byte may be logged twice
   * (serialConnection says why): serialRun reads its output from the socket instead.
   */
  serialText(): string;
  /**
   * Polls the serial output until `pattern` (a string to find, or a RegExp) occurs at or after character
   * `from` (default 0; pass `serialText().length` to wait for new output only); resolves with the match.
   * Fails at once if QEMU exits, or when there is no serial port.
   */
  waitForSerial(pattern: string | RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Writes bytes to the guest's serial port (needs `serialSocket`); connects on first use. */
  serialWrite(text: string): Promise<void>;
  /**
   * Agent mode: runs a shell command in the guest through its serial-port shell and resolves with what it
   * printed (stdout and stderr) and its exit status. Commands run one after another; `command` is one line.
   */
  serialRun(command: string, timeoutMs?: number): Promise<{ output: string; status: number }>;
  /**
   * Agent mode: waits for GUEST_AGENT_READY on the serial port (spice-vdagentd and spice-vdagent up); with
   * `agentX: 'xorg'` for GUEST_AGENT_XORG_READY (and Xorg up on the QXL device with a connected output).
   */
  waitForAgent(timeoutMs?: number): Promise<void>;
  /** Shell mode: waits until a shell on tty1 reports it is ready for commands (GUEST_SHELL_READY on the serial port). */
  waitForShell(timeoutMs?: number): Promise<void>;
  /**
   * Types printable ASCII, `\n` (Return) and `\t` on the guest's PS/2 keyboard through QMP `send-key`
   * (US layout; Shift for capitals and shifted symbols), one key (with Shift) per command. QEMU queues the
   * events with a 10 ms pause between them, so the guest's 16-byte PS/2 queue never overflows. An oracle
   * path into the guest that does not involve SPICE.
   */
  typeViaQmp(text: string): Promise<void>;
  /** Quits QEMU (QMP `quit`, then signals) and deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

/** QEMU key codes (QKeyCode) for US-layout ASCII: the unshifted key, and the key that gives it with Shift. */
const QCODE_PLAIN: Record<string, string> = {
  ' ': 'spc', '\n': 'ret', '\t': 'tab', '-': 'minus', '=': 'equal', '[': 'bracket_left', ']': 'bracket_right',
  '\\': 'backslash', ';': 'semicolon', "'": 'apostrophe', '`': 'grave_accent', ',': 'comma', '.': 'dot', '/': 'slash',
};
const QCODE_SHIFTED: Record<string, string> = {
  '!': '1', '@': '2', '#': '3', $: '4', '%': '5', '^': '6', '&': '7', '*': '8', '(': '9', ')': '0', _: 'minus',
  '+': 'equal', '{': 'bracket_left', '}': 'bracket_right', '|': 'backslash', ':': 'semicolon', '"': 'apostrophe',
  '~': 'grave_accent', '<': 'comma', '>': 'dot', '?': 'slash',
};

/** The QMP `send-key` keys for one ASCII character (US layout). */
export function qcodesFor(ch: string): string[] {
  if (/^[a-z0-9]$/.test(ch)) return [ch];
  if (/^[A-Z]$/.test(ch)) return ['shift', ch.toLowerCase()];
  const plain = QCODE_PLAIN[ch];
  if (plain !== undefined) return [plain];
  const shifted = QCODE_SHIFTED[ch];
  if (shifted !== undefined) return ['shift', shifted];
  throw new Error(`typeViaQmp: no US-layout key for ${JSON.stringify(ch)}`);
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Writes the three files QEMU's `x509-dir` expects: `ca-cert.pem` (a fresh self-signed P-256 CA),
 * `server-cert.pem` (CN=127.0.0.1, SAN IP:127.0.0.1 and DNS:localhost, signed by that CA) and
 * `server-key.pem`. Returns the CA file.
 */
export async function makeSpiceX509Dir(dir: string): Promise<string> {
  const openssl = requireCommand('openssl');
  mkdirSync(dir, { recursive: true });
  const ca = join(dir, 'ca-cert.pem');
  const caKey = join(dir, 'ca-key.pem');
  const key = join(dir, 'server-key.pem');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server-cert.pem');
  const ext = join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await runTool(openssl, ['req', '-x509', ...ec, '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=deskrec test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { timeoutMs: 15000 });
  await runTool(openssl, ['req', '-new', ...ec, '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1'], { timeoutMs: 15000 });
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await runTool(openssl, ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert,
    '-days', '2', '-extfile', ext], { timeoutMs: 15000 });
  return ca;
}

/** True when a TCP connection to host:port is accepted. */
function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => { clearTimeout(t); s.destroy(); resolve(ok); };
    const t = setTimeout(() => { done(false); }, 1000);
    s.once('connect', () => { done(true); });
    s.once('error', () => { done(false); });
  });
}

/** Colours whose channels spread by at least 0x55 (VGA/console colours; not black, greys or white). */
function saturatedColours(img: RgbaImage, limit = 16): number {
  const seen = new Set<number>();
  const px = img.rgba;
  for (let i = 0; i < img.width * img.height && seen.size < limit; i++) {
    const r = px[i * 4] ?? 0;
    const g = px[i * 4 + 1] ?? 0;
    const b = px[i * 4 + 2] ?? 0;
    if (Math.max(r, g, b) - Math.min(r, g, b) >= 0x55) seen.add((r << 16) | (g << 8) | b);
  }
  return seen.size;
}

const KEY = (k: string): Json => ({ type: 'qcode', data: k });

/**
 * Starts qemu-system-x86_64 (TCG, 256 MiB, no default devices, `-vga qxl|std`, no disk) booting the tiny
 * guest, with SPICE on 127.0.0.1 (a fresh port; retried when it was taken meanwhile), connects QMP and
 * returns once `query-spice` reports the ports asked for and the SPICE port accepts TCP. The guest needs
 * several seconds more to show its text: call `waitForText`.
 */
export async function startQemuSpice(opts: SpiceOptions): Promise<SpiceServer> {
  const qemu = requireCommand('qemu-system-x86_64');
  const guest = opts.guest ?? await (opts.guestMode === 'agent' ? buildAgentGuest() : buildGuest());
  const run = new QemuRun('deskrec-spice-', 'QEMU SPICE', opts.startTimeoutMs ?? 20000);
  const { dir, logFile, qmpPath } = run;
  const left = (): number => run.left();
  let serialConn: Socket | undefined;
  const stop = (): Promise<void> => {
    serialConn?.destroy();
    serialConn = undefined;
    return run.stop();
  };

  try {
    const objects: string[] = [];
    let caFile: string | undefined;
    let x509Dir: string | undefined;
    if (opts.password !== undefined) {
      const secret = join(dir, 'spice-password');
      writeFileSync(secret, opts.password, { mode: 0o600 });
      objects.push('-object', `secret,id=spicesec,file=${secret}`);
    }
    if (opts.tls === true) {
      x509Dir = join(dir, 'x509');
      caFile = await makeSpiceX509Dir(x509Dir);
    }
    const guestMode = opts.guestMode ?? 'text';
    // A file chardev: QEMU writes what the guest sends as it comes; the test reads the file.
    const agent = guestMode === 'agent';
    const socketWanted = opts.serialSocket ?? agent;
    const serialFile = (opts.serial ?? guestMode === 'shell') || socketWanted ? join(dir, 'serial.log') : undefined;
    const serialSocket = socketWanted ? join(dir, 'serial.sock') : undefined;
    // With a socket, `logfile=` keeps the file: QEMU logs there everything the guest writes, whether or
    // not a client is connected to the socket.
    const serialArgs = serialFile === undefined ? []
      : serialSocket !== undefined
        ? ['-chardev', `socket,id=serial0,path=${serialSocket},server=on,wait=off,logfile=${serialFile}`, '-serial', 'chardev:serial0']
        : ['-serial', `file:${serialFile}`];
    // The guest agent's channel: a virtio-serial port named as spice-vdagentd expects, wired to
    // spice-server's agent (spicevmc "vdagent").
    const agentArgs = agent ? ['-device', 'virtio-serial-pci', '-chardev', 'spicevmc,id=vdagent,name=vdagent',
      '-device', 'virtserialport,chardev=vdagent,name=com.redhat.spice.0'] : [];
    const agentX: GuestAgentX = opts.agentX ?? 'xvfb';
    if (agentX === 'xorg' && (!agent || opts.vga !== 'qxl')) throw new Error('agentX \'xorg\' needs guestMode \'agent\' and vga \'qxl\'');
    const base = agentX === 'xorg' ? `${guestCmdline(guestMode)} deskrec.agentx=xorg` : guestCmdline(guestMode);
    const cmdline = opts.append !== undefined && opts.append !== '' ? `${base} ${opts.append}` : base;
    let port = -1;
    let tlsPort: number | undefined;
    let args: string[] = [];
    let startedAt = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freeTcpPort();
      tlsPort = opts.tls === true ? await freeTcpPort() : undefined;
      const spice = [`port=${port}`, 'addr=127.0.0.1'];
      spice.push(opts.password !== undefined ? 'password-secret=spicesec' : 'disable-ticketing=on');
      if (tlsPort !== undefined && x509Dir !== undefined) spice.push(`tls-port=${tlsPort}`, `x509-dir=${x509Dir}`);
      if (opts.imageCompression !== undefined) spice.push(`image-compression=${opts.imageCompression}`);
      if (opts.jpegWanCompression !== undefined) spice.push(`jpeg-wan-compression=${opts.jpegWanCompression}`);
      if (opts.zlibGlzWanCompression !== undefined) spice.push(`zlib-glz-wan-compression=${opts.zlibGlzWanCompression}`);
      if (opts.streamingVideo !== undefined) spice.push(`streaming-video=${opts.streamingVideo}`);
      args = ['-machine', 'pc', '-accel', 'tcg', '-m', '256', '-nodefaults', '-no-reboot', '-display', 'none',
        '-vga', opts.vga, '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', cmdline,
        ...serialArgs, ...agentArgs, ...objects, '-spice', spice.join(','), '-qmp', `unix:${qmpPath},server=on,wait=off`, '-name', 'deskrec-spice-test',
        ...(opts.extraArgs ?? [])];
      const log = openSync(logFile, 'a');
      startedAt = Date.now();
      run.child = spawnGroup(qemu, args, { stdio: ['ignore', log, log], env: process.env });
      closeSync(log);
      const proc = run.child;
      const alive = (): void => {
        if (proc.exitCode !== null || proc.signalCode !== null) throw new FatalError(`QEMU exited (${proc.exitCode ?? proc.signalCode ?? '?'})`);
      };
      try {
        run.qmp = await pollUntil('the QMP socket', left(), async () => {
          alive();
          return QmpClient.connect(qmpPath, 5000);
        }, 50);
        const info = await run.qmp.execute('query-spice') as { enabled?: boolean; host?: string; port?: number; 'tls-port'?: number; auth?: string };
        const auth = opts.password !== undefined ? 'spice' : 'none';
        if (info.enabled !== true || info.host !== '127.0.0.1' || info.port !== port || info['tls-port'] !== tlsPort || info.auth !== auth) {
          throw new Error(`QEMU SPICE not as asked (port ${port}, tls-port ${tlsPort ?? 'none'}, auth ${auth}): ${JSON.stringify(info)}`);
        }
        break;
      } catch (e) {
        run.qmp?.close();
        run.qmp = undefined;
        await stopGroup(proc, 1000);
        const clash = /binding socket to .* failed|Failed to open SPICE sockets/.test(logTail(logFile));
        if (!clash || attempt >= 3 || run.left() <= 1000) throw e;
      }
    }
    const session = run.qmp;
    const proc = run.child;
    const alive = (): void => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new FatalError(`QEMU exited (${proc.exitCode ?? proc.signalCode ?? '?'})`);
    };
    await pollUntil(`SPICE on 127.0.0.1:${port}`, left(), async () => {
      alive();
      return await tcpAccepts('127.0.0.1', port) ? true : undefined;
    }, 50);
    if (tlsPort !== undefined) {
      const tp = tlsPort;
      await pollUntil(`SPICE TLS on 127.0.0.1:${tp}`, left(), async () => (await tcpAccepts('127.0.0.1', tp) ? true : undefined), 50);
    }

    let shot = 0;
    const screenshotRgba = async (): Promise<RgbaImage> => {
      const file = join(dir, `screen-${shot++}.ppm`);
      await session.execute('screendump', { filename: file });
      const img = parsePpm(readFileSync(file));
      rmSync(file, { force: true });
      return img;
    };
    const sendKeys = async (keys: string[]): Promise<void> => {
      await session.execute('send-key', { keys: keys.map(KEY) });
    };
    const holdOutput = (): Promise<void> => sendKeys(['ctrl', 's']);
    const releaseOutput = (): Promise<void> => sendKeys(['ctrl', 'q']);
    const holdFirst = opts.vga === 'qxl' || guestMode === 'photo';
    const serialText = (): string => {
      if (serialFile === undefined) return '';
      try {
        return readFileSync(serialFile, 'latin1');
      } catch {
        return ''; // QEMU creates the file at start; it is gone only after stop()
      }
    };
    const waitForSerial = async (pattern: string | RegExp, timeoutMs = 30000, from = 0): Promise<string> => {
      if (serialFile === undefined) throw new Error('waitForSerial needs a serial port: startQemuSpice({ serial: true }) or guestMode \'shell\'');
      const find = (): string | undefined => {
        alive();
        const text = serialText().slice(from);
        if (typeof pattern === 'string') return text.includes(pattern) ? pattern : undefined;
        const m = pattern.exec(text);
        return m === null ? undefined : m[0];
      };
      return pollUntil(`${String(pattern)} on the guest's serial port`, timeoutMs, () => Promise.resolve(find()), 100);
    };
    const spicy = requireCommand('spicy-screenshot');
    let runs = 0;
    /** What the guest wrote to the serial port since serialConnection connected (latin1). */
    let serialReceived = '';
    /**
     * The connection to the serial chardev's socket (made on first use). What the guest writes reaches it
     * exactly once. The log file does not do that while a client is connected: the 8250 sends a byte at a
     * time, each its own socket buffer (so a few hundred bytes fill it while this process is busy elsewhere),
     * and when the write would block QEMU logs the byte anyway and sends it again later (chardev/char.c,
     * qemu_chr_write_buffer logs a failed write whole). One loaded CI run read "deskrrec-run-5" in
     * the log, so the shell's marker never matched and xrandr "timed out".
     */
    const serialConnection = async (): Promise<Socket> => {
      if (serialSocket === undefined) throw new Error('serialWrite needs startQemuSpice({ serialSocket: true }) or guestMode \'agent\'');
      if (serialConn !== undefined && !serialConn.destroyed) return serialConn;
      const conn = connect(serialSocket);
      await new Promise<void>((resolve, reject) => {
        conn.once('connect', () => { resolve(); });
        conn.once('error', reject);
      });
      // Read at once, always: QEMU's writes would stall once the socket buffer is full.
      conn.on('data', (b: Buffer) => { serialReceived += b.toString('latin1'); });
      conn.on('error', () => undefined);
      serialConn = conn;
      return conn;
    };
    const server: SpiceServer = {
      host: '127.0.0.1', port, tlsPort, caFile, password: opts.password, vga: opts.vga, guestMode, qmp: session,
      version: session.version, logFile, serialFile, serialSocket, commandLine: [qemu, ...args], guest,
      screenshotRgba,
      async spicyScreenshotRgba(how = {}) {
        const file = join(dir, `spicy-${shot++}.ppm`);
        const sargs = ['-h', '127.0.0.1', '-o', file];
        const env: NodeJS.ProcessEnv = { ...process.env };
        if (how.tls === true) {
          if (tlsPort === undefined || caFile === undefined) throw new Error('spicyScreenshotRgba({ tls: true }) needs startQemuSpice({ tls: true })');
          // spicy-screenshot has no CA option and leaves spice-gtk's ca-file unset, so OpenSSL's default
          // verify paths are used: SSL_CERT_FILE points them at our CA.
          sargs.push('-s', String(tlsPort));
          env.SSL_CERT_FILE = caFile;
        } else {
          sargs.push('-p', String(port));
        }
        const password = how.password ?? opts.password;
        if (password !== undefined) sargs.push('-w', password);
        await runTool(spicy, sargs, { timeoutMs: 20000, env });
        const img = parsePpm(readFileSync(file));
        rmSync(file, { force: true });
        return img;
      },
      async waitForText(timeoutMs = 30000) {
        // The text has a handful of colours, the photo-mode picture tens of thousands.
        const want = guestMode === 'photo' ? 1000 : 3;
        const image = await pollUntil(guestMode === 'photo' ? 'the guest\'s picture' : 'the guest\'s coloured text', timeoutMs, async () => {
          alive();
          const img = await screenshotRgba();
          const textMode = (img.width === 720 && img.height === 400) || (img.width === 640 && img.height === 480);
          return !textMode && saturatedColours(img, want) >= want ? img : undefined;
        }, 200);
        return { image, bootMs: Date.now() - startedAt };
      },
      async pause() {
        if (holdFirst) {
          await holdOutput();
          let last = await screenshotRgba();
          await pollUntil('a still screen after Ctrl-S', 10000, async () => {
            await sleep(250);
            const now = await screenshotRgba();
            const still = now.width === last.width && now.height === last.height && countDifferentPixels(now, last) === 0;
            last = now;
            return still ? true : undefined;
          }, 0);
        }
        await session.execute('stop');
      },
      async resume() {
        await session.execute('cont');
        if (holdFirst) await releaseOutput();
      },
      holdOutput,
      releaseOutput,
      serialText,
      waitForSerial,
      async serialWrite(text) {
        const conn = await serialConnection();
        await new Promise<void>((resolve, reject) => { conn.write(text, 'latin1', (e) => { if (e) reject(e); else resolve(); }); });
      },
      async serialRun(command, timeoutMs = 30000) {
        if (command.includes('\n')) throw new Error('serialRun: one line only');
        const marker = `deskrec-run-${++runs}-${process.pid}`;
        await serialConnection();
        // The command's output is read from the socket, not from the log file: see serialConnection.
        const from = serialReceived.length;
        // The status line is built by the shell ("marker" ":" status), so the command text itself could
        // never match it.
        await server.serialWrite(`${command}\necho "${marker}"":$?"\n`);
        const re = new RegExp(`${marker}:(\\d+)\\n`);
        return pollUntil(`${JSON.stringify(command)} in the guest`, timeoutMs, () => {
          alive();
          const text = serialReceived.slice(from);
          const m = re.exec(text);
          return Promise.resolve(m === null ? undefined : { output: text.slice(0, m.index), status: Number(m[1]) });
        }, 100).catch((e: unknown) => {
          // What the guest wrote meanwhile says where it stuck (a command that never ended, a shell that died).
          if (e instanceof Error) e.message += `; serial since: ${JSON.stringify(serialReceived.slice(from).slice(-2000))}`;
          throw e;
        });
      },
      async waitForAgent(timeoutMs = 120000) {
        if (guestMode !== 'agent') throw new Error(`waitForAgent: the guest runs in ${guestMode} mode, not agent`);
        // The Xorg marker starts with the plain one: wait for the whole line the mode writes.
        await waitForSerial(agentX === 'xorg' ? GUEST_AGENT_XORG_READY : new RegExp(`${GUEST_AGENT_READY}\\n`), timeoutMs);
      },
      async waitForShell(timeoutMs = 60000) {
        if (guestMode !== 'shell') throw new Error(`waitForShell: the guest runs in ${guestMode} mode, not shell`);
        await waitForSerial(GUEST_SHELL_READY, timeoutMs);
      },
      async typeViaQmp(text) {
        for (const ch of text) await sendKeys(qcodesFor(ch));
      },
      stop,
    };
    return server;
  } catch (e) {
    const tail = logTail(logFile);
    await stop();
    throw new Error(`QEMU (SPICE) failed to start: ${e instanceof Error ? e.message : String(e)}\n${tail}\n(cleaned up ${dir})`);
  }
}
