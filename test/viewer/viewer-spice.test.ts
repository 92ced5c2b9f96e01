/**
 * The viewer on SPICE: QEMU (std and qxl) boots the test guest with a shell on its console; a Chromium tab
 * with our page shows it pixel for pixel as QMP `screendump` has it, and a command typed in the page (noVNC
 * sends scancodes with the QEMU extended key events deskrec acknowledges; the SPICE inputs channel takes
 * them) runs in the guest: it writes a marker to the serial port, and the echoed line shows in the tab.
 */
import type { Browser, Page } from 'playwright-core';
import { openSource } from '../../src/sources/open';
import { Session } from '../../src/session/session';
import { newToken } from '../../src/viewer/auth';
import { Viewer } from '../../src/viewer/viewer';
import { buildAgentGuest } from '../helpers/servers/guest';
import { useServerCleanup } from '../helpers/servers/registry';
import { startQemuSpice, type SpiceServer } from '../helpers/servers/spice';
import { canvasRgba, launchChromium, serveViewer, waitForCanvas } from '../helpers/viewer';
import { testTimeoutFor, waitFor, waitForStillScreen } from '../helpers/wait';

useServerCleanup();

let browser: Browser;
beforeAll(async () => { browser = await launchChromium(); });
afterAll(async () => { await browser?.close(); });

/** Playwright key names for characters that need Shift on a US keyboard (typed with Shift really held). */
const SHIFTED: Record<string, string> = { '>': 'Period', '<': 'Comma', '|': 'Backslash', '_': 'Minus' };

/** Types `text` as a person would on a US keyboard: Shift pressed around shifted characters. */
async function typeLikeAPerson(page: Page, text: string): Promise<void> {
  for (const ch of text) {
    // Scancodes are keys, not characters: a capital is Shift + the letter's key, as on a real keyboard.
    const shifted = /^[A-Z]$/.test(ch) ? `Key${ch}` : SHIFTED[ch];
    if (shifted !== undefined) {
      await page.keyboard.down('Shift');
      await page.keyboard.press(shifted);
      await page.keyboard.up('Shift');
    } else if (ch === '\n') {
      await page.keyboard.press('Enter');
    } else {
      await page.keyboard.press(ch);
    }
  }
}

/** What a test keeps of a SPICE session shown in a Chromium tab through a Viewer. */
interface Shown {
  server: SpiceServer | undefined;
  session: Session | undefined;
  close: () => Promise<void>;
}

/** A Shown whose parts the describe block's afterAll stops (whatever the test got to). */
function shownInDescribe(): Shown {
  const shown: Shown = { server: undefined, session: undefined, close: () => Promise.resolve() };
  afterAll(async () => {
    await shown.close();
    await shown.session?.stop().catch(() => undefined);
    await shown.server?.stop();
  });
  return shown;
}

/** Starts a Session on `server`, mounts a Viewer for it and opens it in a new tab, once it shows a picture. */
async function showInTab(shown: Shown, server: SpiceServer, cookie: string, desktopName: string): Promise<{ session: Session; page: Page }> {
  shown.server = server;
  const session = new Session(openSource(`spice://127.0.0.1:${server.port}`));
  shown.session = session;
  await session.start();
  const token = newToken();
  const viewer = new Viewer({ token, cookie, desktopName });
  viewer.attach(session);
  const served = await serveViewer(viewer);
  shown.close = served.close;
  const page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
  await page.goto(`http://127.0.0.1:${served.port}/?token=${token}`);
  await waitFor('a picture in the tab', async () => ((await canvasRgba(page)) !== null ? true : undefined));
  return { session, page };
}

describe.each(['std', 'qxl'] as const)('-vga %s', (vga) => {
  const shown = shownInDescribe();

  test('the tab shows the guest pixel for pixel, and a command typed in it runs in the guest', async () => {
    const server = await startQemuSpice({ vga, guestMode: 'shell' });
    shown.server = server;
    await server.waitForShell(90000);
    const { session, page } = await showInTab(shown, server, `deskrec-viewer-spice-${vga}`, `QEMU ${vga}`);
    await waitFor('the SPICE inputs channel', () => (session.input.capabilities().keys ? true : undefined));

    // The shell waits at its prompt: the screen is still, so screendump is the oracle.
    await waitForCanvas(page, await server.screenshotRgba(), 'before typing');

    const marker = `deskrec-viewer-${vga}-OK`;
    const from = server.serialText().length;
    const box = await page.locator('#screen canvas').boundingBox();
    if (box === null) throw new Error('no canvas');
    await page.mouse.click(box.x + 20, box.y + 20);
    await typeLikeAPerson(page, `echo ${marker} >/dev/ttyS0\n`);
    await server.waitForSerial(marker, 60000, from);

    // The echoed command and the new prompt, in the tab as in QEMU. Compared with the screen as it is at each
    // try: in one CI run the tab and the "still" screenshot differed in 3069 pixels (about one line of text)
    // for 30 s. Which side was behind is not known; a TCG guest that pauses longer than the still check's
    // 250 ms while drawing makes the "still" picture an old one. A tab that misses an update still fails here.
    await waitForStillScreen(() => server.screenshotRgba());
    await waitForCanvas(page, () => server.screenshotRgba(), 'after typing');
    await page.close();
  }, testTimeoutFor(6, 120000));
});

describe('the SPICE guest agent: clipboard and size', () => {
  // The agent guest's build (cached after the first; a minute or more on a fresh machine) has its own bound.
  beforeAll(async () => { await buildAgentGuest(); }, 600000);
  const shown = shownInDescribe();

  test('text copied in the guest shows in the page; text pasted from the page is the guest\'s clipboard; "Fit to window" resizes the guest', async () => {
    // Xorg on the QXL display (not Xvfb): the agent's monitor configuration then resizes what SPICE shows.
    const server = await startQemuSpice({ vga: 'qxl', guestMode: 'agent', agentX: 'xorg' });
    shown.server = server;
    await server.waitForAgent(180000);
    const { session, page } = await showInTab(shown, server, 'deskrec-viewer-spice-agent', 'QEMU agent');
    await waitFor('the guest agent\'s clipboard', () => (session.input.capabilities().clipboard === null ? true : undefined),
      { detail: () => String(session.input.capabilities().clipboard) });

    // UTF-8 both ways: the agent carries UTF-8, and deskrec speaks the Extended Clipboard to noVNC. The
    // harness's serial line carries bytes (latin1 strings): the UTF-8 bytes go as they are.
    const bytes = (t: string): string => Buffer.from(t, 'utf8').toString('latin1');
    const copied = `copié dans le invité, 日本 ${process.pid}`;
    expect(await server.serialRun(`echo -n '${bytes(copied)}' | DISPLAY=:0 xclip -selection clipboard -t UTF8_STRING`)).toEqual({ output: '', status: 0 });
    await waitFor('the guest clipboard in the page', async () =>
      ((await page.evaluate<string | null>('window.deskrecViewer.remoteClipboard ?? null')) === copied ? true : undefined));
    expect(await page.locator('#clip-text').inputValue()).toBe(copied);

    const fromPage = 'collé depuis la page — ünï 日本';
    await page.evaluate(`window.deskrecViewer.rfb.clipboardPasteFrom(${JSON.stringify(fromPage)})`);
    let pasted = '';
    await waitFor('the page\'s text on the guest clipboard', async () => {
      pasted = Buffer.from((await server.serialRun('DISPLAY=:0 timeout 10 xclip -o -selection clipboard -t UTF8_STRING')).output, 'latin1').toString('utf8');
      return pasted === fromPage ? true : undefined;
    }, { intervalMs: 500, detail: () => JSON.stringify(pasted) });

    // "Fit to window": noVNC's SetDesktopSize becomes the agent's MONITORS_CONFIG; the guest takes the size
    // (its qxl driver's hot-plug, applied by the guest), and the canvas follows pixel for pixel.
    await waitFor('the page offers to fit the guest', async () => (await page.locator('#fit').isVisible() ? true : undefined));
    await page.setViewportSize({ width: 900, height: 640 });
    await page.locator('#fit').click();
    const want = await page.evaluate<{ width: number; height: number }>("(() => { const r = document.getElementById('screen').getBoundingClientRect(); return { width: Math.floor(r.width), height: Math.floor(r.height) }; })()");
    let size = '';
    await waitFor(`the guest resized to ${want.width}x${want.height}`, async () => {
      const shot = await server.screenshotRgba();
      size = `${shot.width}x${shot.height}`;
      return shot.width === want.width && shot.height === want.height ? true : undefined;
    }, { timeoutMs: 60000, detail: () => size });
    await waitForCanvas(page, await waitForStillScreen(() => server.screenshotRgba()), 'the resized guest');
    await page.close();
  }, testTimeoutFor(6, 240000));
});
