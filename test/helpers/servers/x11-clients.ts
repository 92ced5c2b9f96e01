/**
 * Deterministic things to draw on an Xvnc screen: a scrolling xterm, a ticking xclock and typed text, each
 * waited for until its window is mapped, so a test knows the screen has content before it looks.
 */
import type { ChildProcess } from 'node:child_process';
import { requireCommand, runTool } from './proc';
import type { XvncServer } from './xvnc';

/** An X client started on a server: its process (group leader) and its top-level window id. */
export interface XClient {
  process: ChildProcess;
  window: string;
}

/** Waits until a window of `className` is visible on the server (xdotool search --sync), returning its id. */
export async function waitForWindow(server: XvncServer, className: string, timeoutMs = 10000): Promise<string> {
  const r = await runTool(requireCommand('xdotool'), ['search', '--sync', '--onlyvisible', '--class', className],
    { env: server.env, timeoutMs });
  const id = r.stdout.toString('utf8').trim().split('\n').pop() ?? '';
  if (id === '') throw new Error(`no visible ${className} window`);
  return id;
}

/** Starts an xterm at `geometry` (columns x rows + x + y) printing "line N" every `intervalMs`; resolves once it is mapped. */
export async function startScrollingXterm(server: XvncServer, opts: { geometry?: string; intervalMs?: number } = {}): Promise<XClient> {
  const xterm = requireCommand('xterm');
  const secs = ((opts.intervalMs ?? 50) / 1000).toFixed(3);
  const child = server.run(xterm, ['-geometry', opts.geometry ?? '80x24+10+10', '-fa', '', '-fn', 'fixed',
    '-bg', 'black', '-fg', 'white', '-class', 'DeskrecScroll', '-e', 'sh', '-c',
    `i=0; while :; do echo "line $i"; i=$((i+1)); sleep ${secs}; done`]);
  return { process: child, window: await waitForWindow(server, 'DeskrecScroll') };
}

/** Starts `xclock -update 1` (a second hand) at `geometry`; resolves once it is mapped. */
export async function startXclock(server: XvncServer, opts: { geometry?: string } = {}): Promise<XClient> {
  const child = server.run(requireCommand('xclock'), ['-update', '1', '-geometry', opts.geometry ?? '150x150+520+10']);
  return { process: child, window: await waitForWindow(server, 'XClock') };
}

/** Starts an xterm running `cat` (it echoes what is typed) at `geometry`; resolves once it is mapped. */
export async function startTypingXterm(server: XvncServer, opts: { geometry?: string } = {}): Promise<XClient> {
  const child = server.run(requireCommand('xterm'), ['-geometry', opts.geometry ?? '60x10+10+360', '-fa', '', '-fn', 'fixed',
    '-bg', 'white', '-fg', 'black', '-class', 'DeskrecType', '-e', 'cat']);
  return { process: child, window: await waitForWindow(server, 'DeskrecType') };
}

/**
 * Types `text` into `window` with xdotool: focus is set on the window first (XSetInputFocus; Xvnc has no
 * window manager), so the parked, hidden pointer need not move over it.
 */
export async function typeText(server: XvncServer, text: string, window: string, delayMs = 12): Promise<void> {
  const xdotool = requireCommand('xdotool');
  await runTool(xdotool, ['windowfocus', '--sync', window], { env: server.env, timeoutMs: 5000 });
  await runTool(xdotool, ['type', '--delay', String(delayMs), '--', text],
    { env: server.env, timeoutMs: 5000 + text.length * (delayMs + 50) });
}
