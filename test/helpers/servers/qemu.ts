/**
 * QEMU's built-in VNC server for a test: a diskless PC (SeaBIOS only) or a PC booting a 512-byte boot
 * sector of ours that redraws the VGA text screen ten times a second, its VNC on 127.0.0.1 only, driven
 * and screenshotted over QMP. docs/TESTING.md explains each flag.
 */
import { type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePpm, pixelAt, type RgbaImage } from './image';
import { FatalError, pollUntil, requireCommand, spawnGroup, stopGroup } from './proc';
import { QmpClient } from './qmp';
import { registerCleanup, trackDir } from './registry';
import { waitForRfb } from './rfb';

/** How to start QEMU. */
export interface QemuOptions {
  /** Require VNC authentication with this password (QEMU uses its first 8 characters). */
  password?: string;
  /** Let QEMU use lossy encodings (JPEG in Tight) when the client asks (`lossy=on`). */
  lossy?: boolean;
  /**
   * 'animated' (default): boots our boot sector, a full 80x25 text screen whose characters and colours
   * change every 100 ms. 'bios': no disk; SeaBIOS prints its banner and "No bootable device." then waits.
   */
  guest?: 'animated' | 'bios';
  /** Time limit for the whole start-up (default 20 s). */
  startTimeoutMs?: number;
}

/** A running QEMU with VNC. */
export interface QemuServer {
  host: '127.0.0.1';
  /** RFB port (5900 + VNC display number). */
  port: number;
  /** The QMP session (commands such as `stop`, `cont`, `query-vnc`). */
  qmp: QmpClient;
  /** QEMU's version, e.g. "7.2.22". */
  version: string;
  /** QEMU's stdout/stderr. */
  logFile: string;
  /** The VGA screen as RGBA via QMP `screendump` (PPM). */
  screenshotRgba(): Promise<RgbaImage>;
  /** Pauses the guest (QMP `stop`): the screen stops changing; VNC keeps serving. */
  pause(): Promise<void>;
  /** Resumes the guest (QMP `cont`). */
  resume(): Promise<void>;
  /** Sets the VNC password (QMP `set_password`). */
  setPassword(password: string): Promise<void>;
  /** Quits QEMU (QMP `quit`, then signals) and deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The animated guest: a real-mode boot sector (hand-assembled 8086 code, listing beside each instruction)
 * that hides the text cursor, then forever fills the 80x25 text screen at B800:0000 with consecutive
 * characters starting at a frame counter, each in colour 8 + (character & 7) on blue, and waits 100 ms
 * (INT 15h AH=86h). Each frame changes every cell, from a known state, and nothing blinks.
 */
export function animatedBootSector(): Buffer {
  const code = [
    0x31, 0xc0, //             xor ax, ax
    0x8e, 0xd0, //             mov ss, ax
    0xbc, 0x00, 0x7c, //       mov sp, 0x7c00
    0xb4, 0x01, //             mov ah, 1            ; set cursor shape:
    0xb9, 0x00, 0x20, //       mov cx, 0x2000       ;   bit 5 of CH = cursor off
    0xcd, 0x10, //             int 0x10
    0xb8, 0x00, 0xb8, //       mov ax, 0xb800
    0x8e, 0xc0, //             mov es, ax
    0xfc, //                   cld
    0x31, 0xdb, //             xor bx, bx           ; frame counter
    // frame (offset 22):
    0x31, 0xff, //             xor di, di
    0xb9, 0xd0, 0x07, //       mov cx, 2000         ; 80 x 25 cells
    0x88, 0xd8, //             mov al, bl           ; first character = counter
    // cell (offset 29):
    0x88, 0xc4, //             mov ah, al
    0x80, 0xe4, 0x07, //       and ah, 7
    0x80, 0xcc, 0x18, //       or ah, 0x18          ; bright colour (8 + char & 7) on blue
    0xab, //                   stosw
    0xfe, 0xc0, //             inc al
    0xe2, 0xf3, //             loop cell
    0x43, //                   inc bx
    0xb4, 0x86, //             mov ah, 0x86         ; wait CX:DX microseconds
    0xb9, 0x01, 0x00, //       mov cx, 1
    0xba, 0xa0, 0x86, //       mov dx, 0x86a0       ; 0x186a0 = 100000
    0xcd, 0x15, //             int 0x15
    0xeb, 0xdf, //             jmp frame
  ];
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** VGA palette entry 1 (blue) as QEMU renders it (6-bit DAC value 0x2a, times 4): the animated guest's background. */
export const VGA_BLUE = 0x0000a8;

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * What every QEMU the harness starts shares: a temp dir with the log and the QMP socket, a start-up
 * deadline, and one clean stop (QMP `quit`, then signals; temp dir removed) registered for cleanup.
 */
export class QemuRun {
  readonly dir: string;
  readonly logFile: string;
  readonly qmpPath: string;
  child: ChildProcess | undefined;
  qmp: QmpClient | undefined;
  private stopped = false;
  private readonly deadline: number;
  private readonly untrackDir: () => void;
  private readonly unregister: () => void;

  constructor(prefix: string, label: string, startTimeoutMs: number) {
    this.deadline = Date.now() + startTimeoutMs;
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.untrackDir = trackDir(this.dir);
    this.logFile = join(this.dir, 'qemu.log');
    this.qmpPath = join(this.dir, 'qmp.sock');
    this.unregister = registerCleanup(`${label} (${this.dir})`, () => this.stop());
  }

  /** Milliseconds left before the start-up deadline (at least one second). */
  left(): number {
    return Math.max(1000, this.deadline - Date.now());
  }

  /** Quits QEMU and removes the temp dir; safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unregister();
    if (this.qmp !== undefined) {
      try { await this.qmp.execute('quit'); } catch { /* the socket closes as QEMU quits */ }
      this.qmp.close();
    }
    if (this.child !== undefined) await stopGroup(this.child, 3000);
    rmSync(this.dir, { recursive: true, force: true });
    this.untrackDir();
  }
}

/**
 * Starts qemu-system-x86_64 (TCG, 64 MiB, no default devices, std VGA) with VNC on 127.0.0.1 at the first
 * free display from a random start (QEMU's `to=` search, so no port race), connects QMP, sets the password,
 * and returns once VNC sends a banner and the guest has drawn (the animated pattern, or SeaBIOS's text).
 */
export async function startQemuVnc(opts: QemuOptions = {}): Promise<QemuServer> {
  const qemu = requireCommand('qemu-system-x86_64');
  const guest = opts.guest ?? 'animated';
  const run = new QemuRun('deskrec-qemu-', 'QEMU', opts.startTimeoutMs ?? 20000);
  const { dir, logFile, qmpPath } = run;
  const left = (): number => run.left();
  const stop = (): Promise<void> => run.stop();

  try {
    const first = 100 + Math.floor(Math.random() * 2000);
    const vnc = [`127.0.0.1:${first}`, `to=${first + 500}`];
    if (opts.password !== undefined) vnc.push('password=on');
    if (opts.lossy === true) vnc.push('lossy=on');
    const args = ['-accel', 'tcg', '-machine', 'pc', '-m', '64', '-nodefaults', '-vga', 'std',
      '-display', 'none', '-vnc', vnc.join(','), '-qmp', `unix:${qmpPath},server=on,wait=off`,
      '-no-reboot', '-name', 'deskrec-test'];
    if (guest === 'animated') {
      const disk = join(dir, 'boot.img');
      writeFileSync(disk, animatedBootSector());
      args.push('-drive', `file=${disk},format=raw,if=ide`);
    }
    const log = openSync(logFile, 'a');
    const child = run.child = spawnGroup(qemu, args, { stdio: ['ignore', log, log], env: process.env });
    closeSync(log);
    const proc = child;
    const alive = (): void => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new FatalError(`QEMU exited (${proc.exitCode ?? proc.signalCode ?? '?'})`);
    };
    const session = await pollUntil('the QMP socket', left(), async () => {
      alive();
      return QmpClient.connect(qmpPath, 5000);
    }, 50);
    run.qmp = session;
    const info = await session.execute('query-vnc') as { enabled?: boolean; host?: string; service?: string };
    const port = Number(info.service);
    if (info.enabled !== true || info.host !== '127.0.0.1' || !(port > 0)) throw new Error(`QEMU VNC not as asked: ${JSON.stringify(info)}`);
    if (opts.password !== undefined) {
      await session.execute('set_password', { protocol: 'vnc', password: opts.password });
    }
    await waitForRfb('127.0.0.1', port, left(), alive);

    const shotFile = join(dir, 'screen.ppm');
    const screenshotRgba = async (): Promise<RgbaImage> => {
      await session.execute('screendump', { filename: shotFile });
      return parsePpm(readFileSync(shotFile));
    };
    await pollUntil(`the ${guest} guest's first picture`, left(), async () => {
      alive();
      const img = await screenshotRgba();
      if (guest === 'animated') {
        return img.width === 720 && img.height === 400 && pixelAt(img, 0, 0) === VGA_BLUE && pixelAt(img, 719, 399) === VGA_BLUE ? true : undefined;
      }
      return img.width === 720 && img.height === 400 && img.rgba.some((v, i) => i % 4 !== 3 && v !== 0) ? true : undefined;
    }, 100);

    return {
      host: '127.0.0.1', port, qmp: session, version: session.version, logFile,
      screenshotRgba,
      async pause() { await session.execute('stop'); },
      async resume() { await session.execute('cont'); },
      async setPassword(password) { await session.execute('set_password', { protocol: 'vnc', password }); },
      stop,
    };
  } catch (e) {
    const tail = logTail(logFile);
    await stop();
    throw new Error(`QEMU failed to start: ${e instanceof Error ? e.message : String(e)}\n${tail}\n(cleaned up ${dir})`);
  }
}
