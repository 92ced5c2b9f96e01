/**
 * The daemon's HTTP API on a real `deskrec daemon` process: the token on every route but /healthz, start
 * (201 + Location), list with filters, get, stop, delete, Range requests on a segment, 400 with the zod path
 * for bad bodies and bad JSON, the OpenAPI document validated by swagger-parser, the metrics' names, and
 * logs and files that keep secrets and other users out.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type ApiRecording, type DaemonRun } from '../helpers/daemon';
import { decodedFrameCount, requireTool } from '../helpers/media';
import { useServerCleanup } from '../helpers/servers/registry';
import { testTimeoutFor } from '../helpers/wait';

useServerCleanup();

let d: DaemonRun;

beforeAll(async () => {
  requireTool('ffprobe');
  d = await startDaemon({
    targets: [
      { name: 'synth', url: 'test://desktop?size=320x200', mode: 'always', 'fps-max': 10 },
      { name: 'spare', url: 'test://desktop?size=160x120', mode: 'on-demand' },
    ],
  });
}, testTimeoutFor(1));


test('every route but /healthz needs the token (401 without or with a wrong one); /healthz answers without', async () => {
  const routes = ['/recordings', '/recordings/abcdefghijkl', '/metrics', '/openapi.json', '/recordings/abcdefghijkl/segments/0', '/docs', '/nonexistent'];
  for (const route of routes) {
    const none = await fetch(`${d.base}${route}`);
    expect({ route, status: none.status }).toEqual({ route, status: 401 });
    const wrong = await fetch(`${d.base}${route}`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect({ route, status: wrong.status }).toEqual({ route, status: 401 });
  }
  const post = await fetch(`${d.base}/recordings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"url":"test://desktop"}' });
  expect(post.status).toBe(401);
  expect(await post.json()).toEqual({ error: 'UNAUTHORIZED', message: expect.any(String) as string });
  const health = await fetch(`${d.base}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ ok: true, diskLow: false });
});

test('POST → 201 with Location; GET, list with filters, stop, Range on the segment, delete the files', async () => {
  const created = await d.api('POST', '/recordings', { url: 'test://desktop?size=256x160', options: { 'fps-max': 15, format: 'mp4' } });
  expect(created.status).toBe(201);
  const rec = created.body as ApiRecording;
  expect(created.headers.get('location')).toBe(`/recordings/${rec.id}`);
  expect(rec).toMatchObject({ target: null, url: 'test://desktop?size=256x160', state: 'starting', end: null, error: null });
  expect(rec.dir).toMatch(new RegExp(`^api/\\d{8}-\\d{6}-${rec.id}$`));

  const live = await d.waitForRecording(rec.id, 'recording with frames', (r) => r.state === 'recording' && (r.segments[0]?.frames ?? 0) >= 10);
  expect(live.segments[0]).toMatchObject({ file: 'display.mp4', width: 256, height: 160 });

  // The on-demand target starts through the API by name.
  const spare = await d.api('POST', '/recordings', { target: 'spare' });
  expect(spare.status).toBe(201);
  const spareRec = spare.body as ApiRecording;
  expect(spareRec.target).toBe('spare');

  const all = await d.waitForList('the always target recording too', (rs) => rs.some((r) => r.target === 'synth' && r.state === 'recording'));
  expect(all.length).toBeGreaterThanOrEqual(3);
  const bySynth = (await d.api('GET', '/recordings?target=synth')).body as { recordings: ApiRecording[]; total: number };
  expect(bySynth.recordings.every((r) => r.target === 'synth')).toBe(true);
  expect(bySynth.total).toBeGreaterThanOrEqual(1);
  const page = (await d.api('GET', '/recordings?limit=1&offset=1')).body as { recordings: ApiRecording[]; total: number; limit: number; offset: number };
  expect(page.recordings).toHaveLength(1);
  expect(page.total).toBe(all.length);

  // A running recording cannot be deleted.
  const busy = await d.api('DELETE', `/recordings/${rec.id}/files`);
  expect(busy.status).toBe(409);
  expect(busy.body).toMatchObject({ error: 'RECORDING_ACTIVE' });

  const stopped = await d.api('DELETE', `/recordings/${rec.id}`);
  expect(stopped.status).toBe(200);
  const done = stopped.body as ApiRecording;
  expect(done.state).toBe('done');
  expect(done.end).not.toBeNull();
  const seg = done.segments[0];
  if (seg === undefined) throw new Error('no segment');
  expect(seg.frames).toBeGreaterThanOrEqual(10);
  const file = path.join(d.root, done.dir, 'display.mp4');
  expect(seg.bytes).toBe(statSync(file).size);
  const stoppedList = (await d.api('GET', '/recordings?state=done')).body as { recordings: ApiRecording[] };
  expect(stoppedList.recordings.map((r) => r.id)).toContain(rec.id);

  // The segment: whole, and a Range of it.
  const whole = await fetch(`${d.base}/recordings/${rec.id}/segments/0`, { headers: { authorization: `Bearer ${d.token}` } });
  expect(whole.status).toBe(200);
  expect(whole.headers.get('content-type')).toBe('video/mp4');
  const bytes = Buffer.from(await whole.arrayBuffer());
  expect(bytes.equals(readFileSync(file))).toBe(true);
  const part = await fetch(`${d.base}/recordings/${rec.id}/segments/0`, { headers: { authorization: `Bearer ${d.token}`, range: 'bytes=100-299' } });
  expect(part.status).toBe(206);
  expect(part.headers.get('content-range')).toBe(`bytes 100-299/${bytes.length}`);
  expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 300))).toBe(true);
  expect(decodedFrameCount(file)).toBe(seg.frames);
  expect((await d.api('GET', `/recordings/${rec.id}/segments/1`)).status).toBe(404);
  const sj = await d.api('GET', `/recordings/${rec.id}/session.json`);
  expect(sj.body).toMatchObject({ endReason: 'signal', segments: [{ frames: seg.frames }] });

  // Files 0600, directories 0700.
  expect(statSync(path.join(d.root, done.dir)).mode & 0o777).toBe(0o700);
  for (const f of ['display.mp4', 'session.json', 'recording.json']) expect(statSync(path.join(d.root, done.dir, f)).mode & 0o777).toBe(0o600);

  const removed = await d.api('DELETE', `/recordings/${rec.id}/files`);
  expect(removed.status).toBe(204);
  expect(existsSync(path.join(d.root, done.dir))).toBe(false);
  expect((await d.api('GET', `/recordings/${rec.id}`)).status).toBe(404);
  expect((await d.api('DELETE', `/recordings/${spareRec.id}`)).status).toBe(200);
}, testTimeoutFor(3));

test('bad requests: 400 naming the path, bad JSON, unknown ids 404, errors as {error, message}', async () => {
  const cases: [unknown, string][] = [
    [{ url: 'test://desktop', options: { 'fps-max': 'fast' } }, 'options.fps-max'],
    [{ url: 'test://desktop', options: { qp: 99 } }, 'options.qp'],
    [{ url: 'test://desktop', options: { colour: 'yes' } }, 'options: Unrecognized key: "colour"'],
    [{ options: {} }, 'url: give exactly one of url and target'],
    [{ url: 'test://desktop', 'password-file': 'relative.pw' }, 'password-file: must be an absolute path'],
  ];
  for (const [body, expected] of cases) {
    const r = await d.api('POST', '/recordings', body);
    expect({ body, status: r.status }).toEqual({ body, status: 400 });
    expect(r.body).toMatchObject({ error: 'BAD_REQUEST' });
    expect((r.body as { message: string }).message).toContain(expected);
  }
  const badJson = await d.api('POST', '/recordings', '{"url": "test://desktop",');
  expect(badJson.status).toBe(400);
  expect(badJson.body).toMatchObject({ error: 'BAD_JSON' });
  const badScheme = await d.api('POST', '/recordings', { url: 'vcn://x:1' });
  expect(badScheme.status).toBe(400);
  expect(badScheme.body).toMatchObject({ error: 'UNKNOWN_SCHEME' });
  const unknownTarget = await d.api('POST', '/recordings', { target: 'nope' });
  expect(unknownTarget).toMatchObject({ status: 400, body: { error: 'UNKNOWN_TARGET' } });
  expect((await d.api('GET', '/recordings/zzzzzzzzzzzz')).body).toMatchObject({ error: 'NOT_FOUND' });
  expect((await d.api('GET', '/recordings/../../etc')).status).toBe(404);
  expect((await d.api('GET', '/recordings?state=sleeping')).status).toBe(400);
});

test('the OpenAPI document validates, and its Recording schema names every field a response has', async () => {
  const r = await d.api('GET', '/openapi.json');
  expect(r.status).toBe(200);
  const doc = r.body as { components: { schemas: { Recording: { required: string[]; properties: Record<string, unknown> } } } };
  // swagger-parser is an ES module (jest here runs CommonJS): it validates the document in a node of its own.
  const check = spawnSync(process.execPath, ['-e', `
    const SwaggerParser = require('@apidevtools/swagger-parser');
    let text = '';
    process.stdin.on('data', (d) => { text += d; }).on('end', () => {
      SwaggerParser.validate(JSON.parse(text)).then(() => console.log('valid'), (e) => { console.log('invalid: ' + e.message); });
    });`], { input: JSON.stringify(doc), encoding: 'utf8', cwd: path.resolve(__dirname, '../..') });
  expect(check.stdout.trim() + check.stderr).toBe('valid');
  const one = ((await d.api('GET', '/recordings')).body as { recordings: ApiRecording[] }).recordings[0];
  if (one === undefined) throw new Error('no recording listed');
  for (const k of Object.keys(one)) expect(Object.keys(doc.components.schemas.Recording.properties)).toContain(k);
  for (const k of doc.components.schemas.Recording.required) expect(Object.keys(one)).toContain(k);
  const ui = await d.api('GET', '/docs/');
  expect(ui.status).toBe(200);
});

test('metrics have the documented names and no per-recording label', async () => {
  const r = await d.api('GET', '/metrics');
  expect(r.status).toBe(200);
  const text = String(r.body);
  for (const name of ['deskrec_recordings_active', 'deskrec_recordings_total', 'deskrec_frames_encoded_total', 'deskrec_frames_merged_total',
    'deskrec_encode_seconds_bucket', 'deskrec_bytes_written_total', 'deskrec_reconnects_total', 'deskrec_disk_free_bytes', 'deskrec_build_info']) {
    expect(text).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
  }
  expect(text).not.toMatch(/recording="/);
  expect(Number(/^deskrec_frames_encoded_total (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
  expect(Number(/^deskrec_encode_seconds_count (\d+)/m.exec(text)?.[1])).toBeGreaterThan(0);
  expect(Number(/^deskrec_recordings_total\{result="done"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
});

test('logs are JSON with the recording id, and never carry the token or a password', async () => {
  const pwFile = path.join(d.home, 'vm.pw');
  writeFileSync(pwFile, 'hunter2-secret\n', { mode: 0o600 });
  const r = await d.api('POST', '/recordings', { url: 'vnc://127.0.0.1:1', 'password-file': pwFile, options: { 'connect-timeout': 1 } });
  expect(r.status).toBe(201);
  const id = (r.body as ApiRecording).id;
  await d.waitForRecording(id, 'trying to reconnect', (x) => x.state === 'reconnecting');
  await d.api('DELETE', `/recordings/${id}`);
  // A page load with ?token= must not put the token into a log line either.
  await fetch(`${d.base}/recordings?token=${encodeURIComponent(d.token)}`);
  const lines = d.logs();
  expect(lines.some((l) => l.recording === id)).toBe(true);
  expect(lines.filter((l) => l.msg === 'recording started').every((l) => typeof l.recording === 'string')).toBe(true);
  const all = JSON.stringify(lines) + d.stderr();
  expect(all).not.toContain(d.token);
  expect(all).not.toContain('hunter2');
}, testTimeoutFor(2));

test('SIGTERM: every recording finished, exit 0', async () => {
  expect(await d.signal('SIGTERM')).toBe(0);
  const lines = d.logs();
  expect(lines.some((l) => l.msg === 'stopped')).toBe(true);
}, testTimeoutFor(1));
