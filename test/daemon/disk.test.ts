/**
 * The daemon's storage on a small tmpfs: below the free-space floor the running recordings finish their
 * segments cleanly and stop (DISK_LOW), new ones are refused with 507, /healthz says so, and once there
 * is room again recording resumes; a disk filled to the last byte ends a recording with DISK_FULL and a
 * file cut back to its last complete fragment. Every file left decodes.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type ApiRecording } from '../helpers/daemon';
import { decodedFrameCount, requireTool } from '../helpers/media';
import { useServerCleanup } from '../helpers/servers/registry';
import { fillFileSystem, mountTmpfs } from '../helpers/tmpfs';
import { testTimeoutFor } from '../helpers/wait';

useServerCleanup();

beforeAll(() => { requireTool('ffprobe'); });

test('below the floor: recordings stop cleanly, new ones get 507, health says so; room again: the target records again', async () => {
  const fs = mountTmpfs(64 * 1024);
  try {
    const d = await startDaemon({
      storage: { root: path.join(fs.dir, 'rec'), 'min-free': '24MiB' },
      targets: [{ name: 'synth', url: 'test://desktop?size=320x200', mode: 'always', 'fps-max': 10 }],
    });
    const [first] = await d.waitForList('the target recording', (rs) => rs.some((r) => r.target === 'synth' && (r.segments[0]?.frames ?? 0) > 5));
    if (first === undefined) throw new Error('no recording');
    // Another program fills the disk to 16 MiB free: under the floor, but room for the files to finish.
    const filler = path.join(fs.dir, 'filler');
    spawnSync('fallocate', ['-l', `${40 * 1024 * 1024}`, filler]);
    const stopped = await d.waitForRecording(first.id, 'stopped for the disk', (r) => r.state === 'failed');
    expect(stopped.error?.code).toBe('DISK_LOW');
    const health = await fetch(`${d.base}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ ok: false, diskLow: true });
    const refused = await d.api('POST', '/recordings', { url: 'test://desktop?size=64x64' });
    expect(refused.status).toBe(507);
    expect(refused.body).toMatchObject({ error: 'DISK_LOW' });
    for (const s of stopped.segments) expect(decodedFrameCount(path.join(d.root, stopped.dir, s.file))).toBe(s.frames);
    const metrics = String((await d.api('GET', '/metrics')).body);
    expect(Number(/^deskrec_disk_free_bytes (\S+)/m.exec(metrics)?.[1])).toBeLessThan(24 * 1024 * 1024);
    expect(Number(/^deskrec_recordings_total\{result="failed"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);

    // Room again: the always target starts a new recording.
    rmSync(filler);
    await d.waitForList('a new recording of the target', (rs) => rs.some((r) => r.target === 'synth' && r.id !== first.id && r.state === 'recording'));
    expect((await fetch(`${d.base}/healthz`)).status).toBe(200);
    expect(await d.signal('SIGTERM')).toBe(0);
  } finally {
    fs.unmount();
  }
}, testTimeoutFor(4));

test('a disk filled to the last byte: the recording fails with DISK_FULL, its MP4 cut to complete fragments', async () => {
  const fs = mountTmpfs(48 * 1024);
  try {
    const d = await startDaemon({ storage: { root: path.join(fs.dir, 'rec'), 'min-free': '1MiB' } });
    const created = await d.api('POST', '/recordings', { url: 'test://desktop?size=320x200', options: { 'fps-max': 10 } });
    const id = (created.body as ApiRecording).id;
    await d.waitForRecording(id, 'frames written', (r) => (r.segments[0]?.frames ?? 0) > 15);
    fillFileSystem(fs.dir);
    const failed = await d.waitForRecording(id, 'failed for the full disk', (r) => r.state === 'failed');
    expect(['DISK_FULL', 'DISK_LOW']).toContain(failed.error?.code);
    const seg = failed.segments[0];
    if (seg === undefined) throw new Error('no segment');
    expect(decodedFrameCount(path.join(d.root, failed.dir, seg.file))).toBe(seg.frames);
    expect(await d.signal('SIGTERM')).toBe(0);
  } finally {
    fs.unmount();
  }
}, testTimeoutFor(3));
