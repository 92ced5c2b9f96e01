/**
 * The clipboard both ways in UTF-8 against TigerVNC's Xvnc (1.10 and later speak the Extended Clipboard
 * pseudo-encoding; classic cut text is Latin-1 and would turn 日本語 into '?'):
 * - text copied on the X display (xclip) reaches VncSource's clipboard listener intact;
 * - text set through `source.input.clipboard` is what an X program pasting (xclip -o) gets: Xvnc asks
 *   deskrec for it (a request answered with a provide).
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../src/errors';
import { VncSource } from '../../src/sources/vnc';
import { requireCommand, runTool } from '../helpers/servers/proc';
import { useServerCleanup } from '../helpers/servers/registry';
import { startXvnc, type XvncServer } from '../helpers/servers/xvnc';
import { testTimeoutFor, waitFor } from '../helpers/wait';

useServerCleanup();

/** Xvnc's version from `Xvnc -version` ("Xvnc TigerVNC 1.12.0 - built …"), as [major, minor]. */
async function xvncVersion(): Promise<[number, number]> {
  const r = await runTool(requireCommand('Xvnc'), ['-version']).catch((err: unknown) => ({ stdout: Buffer.alloc(0), stderr: String(err) }));
  const m = /TigerVNC (\d+)\.(\d+)/.exec(`${String(r.stdout)}\n${r.stderr}`);
  if (m === null) throw new Error(`cannot tell Xvnc's version from: ${String(r.stdout)} ${r.stderr}`);
  return [Number(m[1]), Number(m[2])];
}

test('UTF-8 text copied on the X display reaches the listener; text deskrec sets is what X pastes', async () => {
  const [major, minor] = await xvncVersion();
  // The Extended Clipboard arrived in TigerVNC 1.10: an older Xvnc cannot pass this test.
  expect(major > 1 || (major === 1 && minor >= 10)).toBe(true);
  const xclip = requireCommand('xclip');
  const x: XvncServer = await startXvnc({ width: 320, height: 200, security: 'None' });
  const source = new VncSource({ host: '127.0.0.1', port: x.port, username: null },
    { password: null, encodings: null, lossyQuality: null, tlsCa: undefined, tlsInsecure: false, taps: [] });
  const received: string[] = [];
  source.onClipboard((text) => { received.push(text); });
  const ac = new AbortController();
  const running = source.run({ onFrame: () => undefined, whenReady: () => Promise.resolve() }, { signal: ac.signal, durationMs: null });
  try {
    const fromX = 'grüße 日本語';
    const file = path.join(path.dirname(x.logFile), 'copied.txt');
    writeFileSync(file, fromX);
    // Wait for the handshake (input is refused before it), so the copy comes after our caps reached Xvnc.
    await waitFor('the VNC handshake', () => {
      try {
        source.input.pointer(319, 199, 0);
        return true;
      } catch (err) {
        if (err instanceof InputError && err.code === 'INPUT_NOT_READY') return undefined;
        throw err;
      }
    });
    x.run('xclip', ['-selection', 'clipboard', '-i', file]);
    await waitFor('the X clipboard at the listener', () => (received.includes(fromX) ? true : undefined), { detail: () => JSON.stringify(received) });

    const toX = 'ünï 日本';
    source.input.clipboard(toX);
    let last = '';
    await waitFor('deskrec\'s text pasted on the X display', async () => {
      const out = await runTool(xclip, ['-o', '-selection', 'clipboard'], { env: x.env, timeoutMs: 5000 }).catch(() => ({ stdout: Buffer.alloc(0) }));
      last = out.stdout.toString('utf8');
      return last === toX ? true : undefined;
    }, { detail: () => JSON.stringify(last) });
  } finally {
    ac.abort();
    await running.catch(() => undefined);
    await x.stop();
  }
}, testTimeoutFor(3));
