/**
 * The tiny Linux guest the SPICE harness boots: a Debian kernel and a busybox initrd that brings up the DRM
 * driver of QEMU's display device (bochs for `-vga std`, qxl for `-vga qxl`) so the framebuffer console runs
 * at the DRM resolution, then prints coloured text forever (or, with `deskrec.mode=photo` on the kernel
 * command line, animates a colour-gradient picture: `guestCmdline('photo')`; with `deskrec.mode=shell`, runs an
 * interactive shell on the console for input tests: `guestCmdline('shell')`). It is built from Debian packages by
 * `scripts/guest/build.sh` at test set-up time (nothing binary is committed) and cached between runs.
 * docs/TESTING.md ("SPICE") explains what is in it and why.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { requireCommand, runTool } from './proc';

/** A built guest: paths of the kernel and initrd, and what build.sh recorded about them. */
export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  /** `build-info` of the build: package, kernel, modules (insmod order), busybox, build_seconds. */
  info: Record<string, string>;
  /** True when this call ran the build; false when the cache was up to date. */
  built: boolean;
  /** How long `build.sh` took in this call (a few ms when cached). */
  ms: number;
}

/**
 * Kernel command line: the console on the first virtual terminal (so fbcon draws our text), no kernel
 * chatter on it (`quiet loglevel=3`), no reboot loop on a panic (`panic=-1` with QEMU's `-no-reboot` ends
 * QEMU), no console blanking, no blinking cursor (the screen changes only when the guest prints).
 */
export const GUEST_CMDLINE = 'console=tty0 quiet loglevel=3 panic=-1 consoleblank=0 vt.global_cursor_default=0';

/**
 * What the guest shows: `text` (the default) prints coloured text; `photo` animates a colour-gradient
 * picture; `shell` shows a banner and an interactive busybox shell on tty1, which reads QEMU's PS/2
 * keyboard (what SPICE's inputs channel and QMP `send-key` type on). `agent` is a different initrd
 * (`buildAgentGuest()`): Xvfb, the real spice-vdagent and xclip, with a command shell on the serial port.
 */
export type GuestMode = 'text' | 'photo' | 'shell' | 'agent';

/**
 * What the shell-mode guest writes to its serial port (/dev/ttyS0, QEMU `-serial`) each time a shell is
 * about to read its first command: typed keys reach the shell from then on.
 */
export const GUEST_SHELL_READY = 'deskrec-shell-ready';

/**
 * What the agent guest writes to its serial port once spice-vdagentd and the spice-vdagent session agent
 * run and the daemon has opened the virtio port (so spice-server reports the agent connected); from then
 * on the serial port takes shell commands.
 */
export const GUEST_AGENT_READY = 'deskrec-agent-ready';

/**
 * The agent guest's X server: `xvfb` (the default; X is not the SPICE display) or `xorg` (kernel argument
 * `deskrec.agentx=xorg`: Xorg with the modesetting driver on the qxl DRM device, so X is the SPICE display
 * and an XRandR mode change resizes it; needs `-vga qxl`).
 */
export type GuestAgentX = 'xvfb' | 'xorg';

/**
 * What the agent guest writes instead of GUEST_AGENT_READY (which it starts with) in `xorg` mode: Xorg runs
 * on the QXL device with a connected output, and the agent is connected as in GUEST_AGENT_READY.
 */
export const GUEST_AGENT_XORG_READY = `${GUEST_AGENT_READY} xorg`;

/**
 * The kernel command line for a mode. `photo` adds `deskrec.mode=photo`: /init then draws a smooth
 * gradient picture on /dev/fb0 and keeps redrawing a 256-row full-width band in the middle of the screen
 * (the picture scrolling through it, ~15 times a second), so spice-server takes it for a photo (JPEG under
 * `jpeg-wan-compression=always`) and for video (MJPEG streams under `streaming-video=all`). See
 * scripts/guest/build.sh, step 4b. `shell` adds `deskrec.mode=shell`: a banner, then `sh -i` on tty1 with
 * tty1 as its controlling terminal, restarted if it exits; the screen changes only when the shell echoes
 * or prints. With a serial port it writes GUEST_SHELL_READY there when ready, and a typed
 * `echo X >/dev/ttyS0` puts X there. See step 4c. `text` leaves the command line as it always was.
 */
export function guestCmdline(mode: GuestMode = 'text'): string {
  // The agent guest is its own initrd: its /init reads no deskrec.mode (startQemuSpice adds deskrec.agentx).
  return mode === 'text' || mode === 'agent' ? GUEST_CMDLINE : `${GUEST_CMDLINE} deskrec.mode=${mode}`;
}

/** The build script, from the repository root. */
export const GUEST_BUILD_SCRIPT = resolve(__dirname, '..', '..', '..', 'scripts', 'guest', 'build.sh');

/** The agent guest's build script (runs build.sh first, for the kernel). */
export const GUEST_AGENT_BUILD_SCRIPT = resolve(__dirname, '..', '..', '..', 'scripts', 'guest', 'build-agent.sh');

/** Where the guest is cached: $DESKREC_GUEST_DIR, else ~/.cache/deskrec/spice-guest. */
export function defaultGuestDir(): string {
  const fromEnv = process.env.DESKREC_GUEST_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'deskrec', 'spice-guest');
}

function readInfo(dir: string, name = 'build-info'): Record<string, string> {
  const info: Record<string, string> = {};
  const file = join(dir, name);
  if (!existsSync(file)) return info;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) info[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return info;
}

const builds = new Map<string, Promise<GuestImage>>();

/**
 * Builds the guest into `dir` (default `defaultGuestDir()`) unless its cache is up to date; once per dir
 * and process. The script itself locks the dir, so parallel jest workers wait for one build.
 */
export function buildGuest(dir = defaultGuestDir(), timeoutMs = 300000): Promise<GuestImage> {
  const known = builds.get(dir);
  if (known !== undefined) return known;
  const p = (async (): Promise<GuestImage> => {
    const bash = requireCommand('bash');
    for (const tool of ['apt-get', 'dpkg-deb', 'busybox', 'cpio', 'gzip', 'xz', 'flock']) requireCommand(tool);
    const t0 = Date.now();
    const r = await runTool(bash, [GUEST_BUILD_SCRIPT, dir], { timeoutMs });
    const ms = Date.now() - t0;
    const kernel = join(dir, 'vmlinuz');
    const initrd = join(dir, 'initrd.cpio.gz');
    if (!existsSync(kernel) || !existsSync(initrd)) throw new Error(`guest build left no vmlinuz/initrd.cpio.gz in ${dir}: ${r.stderr}`);
    return { dir, kernel, initrd, info: readInfo(dir), built: r.stderr.includes('build.sh: built'), ms };
  })();
  builds.set(dir, p);
  p.catch(() => { builds.delete(dir); });
  return p;
}

const agentBuilds = new Map<string, Promise<GuestImage>>();

/**
 * Builds the agent guest (`scripts/guest/build-agent.sh`: build.sh's kernel plus `initrd-agent.cpio.gz`
 * with Xvfb, spice-vdagent and xclip) into `dir` unless its cache is up to date; once per dir and process.
 * `info` is `build-info-agent` (packages, versions, initrd_bytes, build_seconds).
 */
export function buildAgentGuest(dir = defaultGuestDir(), timeoutMs = 600000): Promise<GuestImage> {
  const known = agentBuilds.get(dir);
  if (known !== undefined) return known;
  const p = (async (): Promise<GuestImage> => {
    const bash = requireCommand('bash');
    for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'busybox', 'cpio', 'gzip', 'xz', 'flock']) requireCommand(tool);
    const t0 = Date.now();
    const r = await runTool(bash, [GUEST_AGENT_BUILD_SCRIPT, dir], { timeoutMs });
    const ms = Date.now() - t0;
    const kernel = join(dir, 'vmlinuz');
    const initrd = join(dir, 'initrd-agent.cpio.gz');
    if (!existsSync(kernel) || !existsSync(initrd)) throw new Error(`agent guest build left no vmlinuz/initrd-agent.cpio.gz in ${dir}: ${r.stderr}`);
    return { dir, kernel, initrd, info: readInfo(dir, 'build-info-agent'), built: r.stderr.includes('build-agent.sh: built'), ms };
  })();
  agentBuilds.set(dir, p);
  p.catch(() => { agentBuilds.delete(dir); });
  return p;
}

/**
 * For a test file that boots the agent guest: a beforeAll that builds the plain and the agent guest (cached
 * after the first build; a minute or more on a fresh machine, so set-up has its own bound), and the notes
 * the file prints after its tests under `title`.
 */
export function useAgentGuest(title: string): string[] {
  beforeAll(async () => {
    await buildGuest();
    await buildAgentGuest();
  }, 600000);
  const notes: string[] = [];
  afterAll(() => {
    process.stdout.write(`${title}:\n${notes.join('\n')}\n`);
  });
  return notes;
}
