/**
 * Free TCP ports and X display numbers on 127.0.0.1, safe for parallel jest workers. A port comes from the
 * kernel (bind to port 0 on 127.0.0.1, read it, close): the kernel hands out ephemeral ports in turn, so two
 * workers asking at once get different ones; the short gap until the server binds it is closed by the
 * servers' start-up retrying on "address in use". A display number is reserved with an exclusive lock file
 * of ours beside the X server's own socket and lock files. (Xvnc itself is started with `-displayfd`, which
 * lets the X server pick and bind a free display atomically; `reserveDisplay` is for other X servers.)
 */
import { createServer } from 'node:net';
import { existsSync, openSync, closeSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago and has not been handed out before in this worker. */
export async function freeTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr !== null ? addr.port : 0;
        srv.close(() => { resolve(p); });
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free TCP port on 127.0.0.1');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when an X server uses (or left traces of) display `n`: its unix socket or its lock file exists. */
export function displayInUse(n: number): boolean {
  return existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`);
}

/** A reserved X display number; `release` deletes the reservation. */
export interface DisplayReservation {
  display: number;
  release(): void;
}

/**
 * Reserves an X display number ≥ `from` that no X server uses, with an O_EXCL lock file holding our pid
 * (a lock whose pid is dead is taken over), so two workers never get the same number.
 */
export function reserveDisplay(from = 100, to = 999): DisplayReservation {
  for (let n = from; n <= to; n++) {
    if (displayInUse(n)) continue;
    const lock = `/tmp/.deskrec-display-${n}.lock`;
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch {
      let owner = NaN;
      try { owner = Number(readFileSync(lock, 'utf8').trim()); } catch { /* vanished meanwhile */ }
      if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) continue;
      try { unlinkSync(lock); } catch { /* another worker took it over */ }
      try { fd = openSync(lock, 'wx'); } catch { continue; }
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    if (displayInUse(n)) {
      unlinkSync(lock);
      continue;
    }
    return { display: n, release: () => { try { unlinkSync(lock); } catch { /* gone */ } } };
  }
  throw new Error(`no free X display number in ${from}..${to}`);
}
