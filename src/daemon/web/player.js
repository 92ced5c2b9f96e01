// The player: one recording's video segments on one <video> element, played one after another on one
// timeline (the session's clock: segment i covers start_ms … start_ms + duration_ms; a reconnect leaves a
// gap, which playback skips), with a seek bar over the whole recording, hover previews from thumbs.vtt (a
// sprite sheet the daemon made while recording), the activity strip from activity.json (how much of the
// screen changed in each second), "skip idle", speeds 0.5×–16× and keyboard shortcuts.
//
// Each segment is fetched from /recordings/:id/play/:n, where the daemon hides the MP4's edit list so that
// the segment's media time starts at 0 at its first frame (src/daemon/page.ts says why): recording time =
// start_ms + currentTime × 1000.
import { $, api, fmtClock, RUNNING, stripToken, videoSegments } from './common.js';

const params = new URLSearchParams(location.search);
const id = params.get('id') || '';
stripToken();

const video = $('video');
const SPEEDS = [0.5, 1, 2, 4, 8, 16];
/** A stretch without any change longer than this is skipped when "skip idle" is on, ms. */
const IDLE_MS = 2000;
/** A running recording's list of finished segments, activity and previews are fetched again this often, ms. */
const REFRESH_MS = 10000;

let rec = null;
/** The playable segments: {n, start, dur} (ms on the recording's clock). */
let segs = [];
let T0 = 0;
let T1 = 0;
/** Index into `segs` of the segment in the <video>, -1 before any. */
let cur = -1;
/** Where to go in `segs[cur]` (ms) once its metadata has loaded; null when the element is there. */
let pendingOffset = null;
/** The person wants it playing (the element pauses on its own at each segment's end). */
let wantPlay = false;
let rate = 1;
let skipIdle = false;
/** {bucketMs, values, final} from activity.json, or null. */
let activity = null;
/** Seek-bar preview cues: {start, end, url, x, y, w, h}. */
let cues = [];
let sprite = null;
let skips = 0;
let idleRun = null;
let dragging = false;

function message(text) {
  const m = $('message');
  m.textContent = text || '';
  m.hidden = !text;
}

function segIndexAt(t) {
  for (let i = 0; i < segs.length; i++) if (t < segs[i].start + segs[i].dur) return i;
  return segs.length - 1;
}

/** The recording time shown now, ms. */
function now() {
  if (cur < 0) return T0;
  const s = segs[cur];
  if (pendingOffset !== null) return s.start + pendingOffset;
  return s.start + Math.min(video.currentTime * 1000, s.dur);
}

function loadSegment(i, offset) {
  cur = i;
  pendingOffset = offset;
  // load() resets playbackRate to defaultPlaybackRate: set both, so the speed survives segment changes.
  video.defaultPlaybackRate = rate;
  video.src = `/recordings/${encodeURIComponent(id)}/play/${segs[i].n}`;
}

/**
 * The element's time for `offset` ms into its segment, 20 µs late. A frame's time in the file is a whole
 * number of track-timescale units (1/57600 s here), so a frame recorded at 4100 ms may start a few µs after
 * 4.1 s, and Chromium rounds a seek through that timescale and down to whole µs: a seek to exactly 4.1 s
 * showed the frame before (seen in a seek test, currentTime 4.099999). 20 µs is far below the 1 ms that
 * frames are at least apart, so the picture is the one of the millisecond asked for.
 */
function mediaSeconds(offset) {
  return (offset + 0.02) / 1000;
}

/** Goes to recording time `t` (ms); a time in a gap goes to the next segment's start. */
function seek(t) {
  if (segs.length === 0) return;
  t = Math.min(Math.max(t, T0), T1);
  const i = segIndexAt(t);
  const s = segs[i];
  // The very end shows the last frame rather than ending the element.
  const offset = Math.min(Math.max(0, t - s.start), Math.max(0, s.dur - 1));
  idleRun = null;
  if (i !== cur) loadSegment(i, offset);
  else if (video.readyState >= 1 && pendingOffset === null) video.currentTime = mediaSeconds(offset);
  else pendingOffset = offset;
  render();
}

function play() {
  if (segs.length === 0) return;
  if (now() >= T1 - 1) seek(T0);
  wantPlay = true;
  if (pendingOffset === null && video.readyState >= 1) video.play().catch(() => undefined);
  render();
}

function pause() {
  wantPlay = false;
  video.pause();
  render();
}

function togglePlay() {
  if (wantPlay) pause(); else play();
}

function setRate(r) {
  rate = r;
  video.defaultPlaybackRate = r;
  video.playbackRate = r;
  $('speed').value = String(r);
  render();
}

function faster(step) {
  const i = SPEEDS.indexOf(rate);
  const next = SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, (i < 0 ? 1 : i) + step))];
  setRate(next);
}

function setSkipIdle(on) {
  skipIdle = on;
  $('skip-idle').checked = on;
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => undefined);
  else $('player').requestFullscreen().catch(() => undefined);
}

video.addEventListener('loadedmetadata', () => {
  video.playbackRate = rate;
  if (pendingOffset !== null) {
    video.currentTime = mediaSeconds(pendingOffset);
    pendingOffset = null;
  }
  if (wantPlay) video.play().catch(() => undefined);
  render();
});

// Segments one after another: the next one starts where this one ends (a gap between them is skipped).
video.addEventListener('ended', () => {
  if (cur + 1 < segs.length) {
    loadSegment(cur + 1, 0);
  } else {
    wantPlay = false;
    render();
  }
});

video.addEventListener('error', () => {
  const e = video.error;
  message(`Segment ${cur + 1} cannot be played${e ? ` (${e.message || `error ${e.code}`})` : ''}.`);
});
for (const ev of ['play', 'pause', 'seeked', 'timeupdate', 'ratechange']) video.addEventListener(ev, () => { render(); });

/** The idle run (buckets a … e-1 all 0) around bucket b, cached while playback stays inside it. */
function idleRunAt(b) {
  if (idleRun !== null && b >= idleRun.a && b < idleRun.e) return idleRun;
  const v = activity.values;
  if (b >= v.length || v[b] !== 0) return null;
  let a = b;
  while (a > 0 && v[a - 1] === 0) a--;
  let e = b;
  while (e < v.length && v[e] === 0) e++;
  idleRun = { a, e };
  return idleRun;
}

/** "Skip idle": inside a stretch of more than IDLE_MS without any change, jump to where the next change begins. */
function maybeSkip() {
  if (!skipIdle || !wantPlay || activity === null || video.seeking || video.paused || pendingOffset !== null) return;
  const t = now();
  const run = idleRunAt(Math.floor(t / activity.bucketMs));
  if (run === null) return;
  const atEnd = run.e >= activity.values.length;
  // Beyond what activity.json knows yet (a running recording): not known to be idle.
  if (atEnd && !activity.final) return;
  if ((run.e - run.a) * activity.bucketMs <= IDLE_MS) return;
  const target = atEnd ? T1 : run.e * activity.bucketMs;
  if (target - t < 250) return;
  skips++;
  seek(target);
}

/** Jumps to the start of the next change after the current one (key n). */
function nextChange() {
  if (activity === null) return;
  const v = activity.values;
  let b = Math.floor(now() / activity.bucketMs);
  while (b < v.length && v[b] > 0) b++;
  while (b < v.length && v[b] === 0) b++;
  if (b < v.length) seek(b * activity.bucketMs);
}

function render() {
  const t = now();
  const span = T1 - T0;
  const f = span > 0 ? Math.min(1, Math.max(0, (t - T0) / span)) : 0;
  $('played').style.width = `${f * 100}%`;
  $('head').style.left = `${f * 100}%`;
  $('time').textContent = `${fmtClock(t)} / ${fmtClock(T1)}`;
  $('play').textContent = wantPlay ? 'Pause' : 'Play';
  const seekEl = $('seek');
  seekEl.setAttribute('aria-valuemin', String(Math.floor(T0 / 1000)));
  seekEl.setAttribute('aria-valuemax', String(Math.floor(T1 / 1000)));
  seekEl.setAttribute('aria-valuenow', String(Math.floor(t / 1000)));
  seekEl.setAttribute('aria-valuetext', fmtClock(t));
  $('segment').textContent = segs.length > 1 && cur >= 0 ? `segment ${cur + 1} of ${segs.length}` : '';
}

function loop() {
  maybeSkip();
  if (wantPlay) render();
  requestAnimationFrame(loop);
}

// --- seek bar, previews, activity strip ---------------------------------------------------------------

function timeAtX(clientX) {
  const r = $('seek').getBoundingClientRect();
  const f = r.width > 0 ? Math.min(1, Math.max(0, (clientX - r.left) / r.width)) : 0;
  return T0 + f * (T1 - T0);
}

function cueAt(t) {
  for (const c of cues) if (t >= c.start && t < c.end) return c;
  return cues.length > 0 && t >= cues[cues.length - 1].end ? cues[cues.length - 1] : null;
}

function showPreview(clientX) {
  if (T1 <= T0) return;
  const t = timeAtX(clientX);
  const box = $('preview');
  const img = $('preview-img');
  const c = cueAt(t);
  if (c) {
    img.hidden = false;
    img.style.width = `${c.w}px`;
    img.style.height = `${c.h}px`;
    img.style.backgroundImage = `url("${c.url}")`;
    img.style.backgroundPosition = `-${c.x}px -${c.y}px`;
  } else {
    img.hidden = true;
  }
  $('preview-time').textContent = fmtClock(t);
  box.hidden = false;
  const r = $('timeline').getBoundingClientRect();
  const w = box.offsetWidth;
  box.style.left = `${Math.min(Math.max(0, clientX - r.left - w / 2), Math.max(0, r.width - w))}px`;
}

const timeline = $('timeline');
timeline.addEventListener('pointerdown', (e) => {
  if (e.button !== 0) return;
  dragging = true;
  timeline.setPointerCapture(e.pointerId);
  seek(timeAtX(e.clientX));
});
timeline.addEventListener('pointermove', (e) => {
  showPreview(e.clientX);
  if (dragging) seek(timeAtX(e.clientX));
});
timeline.addEventListener('pointerup', () => { dragging = false; });
timeline.addEventListener('pointercancel', () => { dragging = false; });
timeline.addEventListener('pointerleave', () => { if (!dragging) $('preview').hidden = true; });

/** Gaps between segments (a reconnect) on the seek bar. */
function drawGaps() {
  const g = $('gaps');
  g.replaceChildren();
  const span = T1 - T0;
  if (span <= 0) return;
  for (let i = 0; i + 1 < segs.length; i++) {
    const a = segs[i].start + segs[i].dur;
    const b = segs[i + 1].start;
    if (b - a < 1) continue;
    const d = document.createElement('div');
    d.className = 'gap';
    d.title = `not recorded (${fmtClock(b - a)})`;
    d.style.left = `${((a - T0) / span) * 100}%`;
    d.style.width = `${((b - a) / span) * 100}%`;
    g.append(d);
  }
}

function drawActivity() {
  const c = $('activity');
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.max(1, Math.round(c.clientWidth * dpr));
  c.height = Math.max(1, Math.round(c.clientHeight * dpr));
  const g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const span = T1 - T0;
  if (activity === null || span <= 0) return;
  const { values, bucketMs } = activity;
  g.fillStyle = '#8ab4f8';
  for (let x = 0; x < c.width; x++) {
    const t0 = T0 + (x / c.width) * span;
    const t1 = T0 + ((x + 1) / c.width) * span;
    const b0 = Math.floor(t0 / bucketMs);
    const b1 = Math.max(b0, Math.ceil(t1 / bucketMs) - 1);
    let v = 0;
    for (let b = b0; b <= b1 && b < values.length; b++) v = Math.max(v, values[b] || 0);
    if (v <= 0) continue;
    // The square root: a cursor blink (0.01 %) still shows, a full-screen change fills the strip.
    const h = Math.max(dpr, Math.sqrt(v) * c.height);
    g.fillRect(x, c.height - h, 1, h);
  }
}

/** `HH:MM:SS.mmm` or `MM:SS.mmm` → ms. */
function vttTime(s) {
  const parts = s.trim().split(':').map(Number);
  let ms = 0;
  for (const p of parts) ms = ms * 60 + p;
  return Math.round(ms * 1000);
}

/** The cues of a sprite-sheet WebVTT file (`URL#xywh=x,y,w,h` as each cue's text), URLs resolved against `base`. */
function parseVtt(text, base) {
  const out = [];
  for (const block of text.replace(/\r\n?/g, '\n').split(/\n{2,}/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const i = lines.findIndex((l) => l.includes('-->'));
    if (i < 0 || lines[i + 1] === undefined) continue;
    const [a, b] = lines[i].split('-->');
    const u = new URL(lines[i + 1].trim(), base);
    const m = /xywh=(\d+),(\d+),(\d+),(\d+)/.exec(u.hash);
    if (!m) continue;
    u.hash = '';
    out.push({ start: vttTime(a), end: vttTime(b.trim().split(/\s+/)[0]), url: u.href, x: +m[1], y: +m[2], w: +m[3], h: +m[4] });
  }
  return out;
}

async function loadExtras() {
  const base = new URL(`/recordings/${encodeURIComponent(id)}/`, location.href);
  try {
    const a = await api(`/recordings/${encodeURIComponent(id)}/activity.json`);
    activity = { bucketMs: a.bucket_ms, values: a.activity, final: a.final };
    idleRun = null;
  } catch {
    activity = null; // not made yet (or a recording from before the page existed)
  }
  drawActivity();
  try {
    const res = await fetch(new URL('thumbs.vtt', base), { cache: 'no-store' });
    if (res.ok) {
      cues = parseVtt(await res.text(), new URL('thumbs.vtt', base));
      if (cues.length > 0 && (sprite === null || sprite.src !== cues[0].url)) {
        // Loaded once, ahead of the first hover.
        sprite = new Image();
        sprite.src = cues[0].url;
      }
    }
  } catch {
    cues = [];
  }
}

// --- the recording --------------------------------------------------------------------------------------

function setSegments(r) {
  let list = videoSegments(r);
  // A running recording's last segment is still being written: only the finished ones are played.
  if (RUNNING.has(r.state)) list = list.slice(0, -1);
  list = list.filter((s) => s.dur > 0);
  const grew = list.length !== segs.length;
  segs = list;
  T0 = segs.length > 0 ? segs[0].start : 0;
  T1 = segs.length > 0 ? segs[segs.length - 1].start + segs[segs.length - 1].dur : 0;
  return grew;
}

function showRecording(r) {
  $('title').textContent = `${r.target || r.url} · ${new Date(r.start).toLocaleString()}`;
  document.title = `deskrec · ${r.target || r.url}`;
  const st = $('state');
  st.textContent = r.state;
  st.className = `state ${r.state}`;
  if (r.error) st.title = `${r.error.code}: ${r.error.message}`;
  const running = RUNNING.has(r.state) && r.state !== 'finalizing';
  const live = $('live');
  live.hidden = !running;
  live.href = `/recordings/${encodeURIComponent(r.id)}/live/`;
  if (segs.length === 0) {
    message(running ? 'This recording has no finished segment yet: watch it live.' : 'This recording has no video.');
  } else if (running) {
    message('This recording is still going on: the finished segments are below; the newest part is in the live view.');
  } else {
    message('');
  }
}

async function refreshRunning() {
  try {
    const r = await api(`/recordings/${encodeURIComponent(id)}`);
    rec = r;
    const grew = setSegments(r);
    showRecording(r);
    if (grew) {
      drawGaps();
      if (cur < 0 && segs.length > 0) seek(T0);
    }
    await loadExtras();
    render();
    if (RUNNING.has(r.state)) setTimeout(refreshRunning, REFRESH_MS);
  } catch (err) {
    message(`The daemon answered: ${err.message}`);
  }
}

async function start() {
  if (!/^[a-z0-9]{12}$/.test(id)) {
    message('No recording given (player.html?id=…).');
    return;
  }
  try {
    rec = await api(`/recordings/${encodeURIComponent(id)}`);
  } catch (err) {
    message(`The daemon answered: ${err.message}`);
    return;
  }
  setSegments(rec);
  showRecording(rec);
  drawGaps();
  if (segs.length > 0) seek(T0);
  await loadExtras();
  render();
  if (RUNNING.has(rec.state)) setTimeout(refreshRunning, REFRESH_MS);
}

// --- controls and keys ------------------------------------------------------------------------------------

$('play').addEventListener('click', (e) => { togglePlay(); e.currentTarget.blur(); });
$('speed').addEventListener('change', (e) => { setRate(Number(e.currentTarget.value)); e.currentTarget.blur(); });
$('skip-idle').addEventListener('change', (e) => { setSkipIdle(e.currentTarget.checked); e.currentTarget.blur(); });
$('fullscreen').addEventListener('click', (e) => { toggleFullscreen(); e.currentTarget.blur(); });
video.addEventListener('click', togglePlay);
window.addEventListener('resize', drawActivity);

document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = e.target && e.target.tagName;
  if (tag === 'SELECT' || tag === 'TEXTAREA' || (tag === 'INPUT' && e.target.type !== 'checkbox')) return;
  switch (e.key) {
    case ' ': case 'k': togglePlay(); break;
    case 'ArrowLeft': seek(now() - (e.shiftKey ? 60000 : 5000)); break;
    case 'ArrowRight': seek(now() + (e.shiftKey ? 60000 : 5000)); break;
    case 'Home': seek(T0); break;
    case 'End': seek(T1); break;
    case '+': case '=': faster(1); break;
    case '-': case '_': faster(-1); break;
    case 'n': nextChange(); break;
    case 'i': setSkipIdle(!skipIdle); break;
    case 'f': toggleFullscreen(); break;
    default: return;
  }
  e.preventDefault();
});

/** For tests and the console: the player's state on the recording's clock (ms). */
window.deskrecPlayer = {
  time: now,
  seek,
  play,
  pause,
  setRate,
  setSkipIdle,
  get range() { return { start: T0, end: T1 }; },
  get segment() { return cur; },
  get segments() { return segs.map((s) => ({ ...s })); },
  /** The <video> shows the wanted moment: metadata loaded, no seek pending, a frame decoded. */
  get settled() { return cur >= 0 && pendingOffset === null && !video.seeking && video.readyState >= 2; },
  get playing() { return wantPlay; },
  get skips() { return skips; },
  get cues() { return cues.length; },
  get spriteWidth() { return sprite !== null && sprite.complete ? sprite.naturalWidth : 0; },
  get activity() { return activity; },
};

requestAnimationFrame(loop);
void start();
