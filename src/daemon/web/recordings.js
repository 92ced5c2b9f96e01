// The recordings list: the daemon's GET /recordings as a table, refreshed every few seconds, with a
// thumbnail per recording (thumbnail.jpg, made by the daemon from the session's picture), links to the
// player and, while a recording runs, to its live view.
import { $, api, el, fmtBytes, fmtClock, fmtDate, RUNNING, stripToken, videoSegments } from './common.js';

stripToken();

const LIMIT = 50;
const REFRESH_MS = 5000;
let offset = 0;
let total = 0;
let timer = null;

/** What the tests (and curious people) can read: the last list shown. */
window.deskrecList = { loaded: false, ids: [], total: 0, error: null };

function durationOf(r) {
  const end = r.end ? Date.parse(r.end) : Date.now();
  return Math.max(0, end - Date.parse(r.start));
}

function sizeOf(r) {
  if (r.stats && typeof r.stats.bytes === 'number') return r.stats.bytes;
  return r.segments.reduce((n, s) => n + (s.bytes || 0), 0);
}

function thumbnailCell(r) {
  const td = el('td', 'thumb-cell');
  const running = RUNNING.has(r.state);
  // The image of a running recording changes every ~10 s: a version in the URL makes the browser ask again.
  const v = running ? String(Math.floor(Date.now() / 10000)) : (r.end || '');
  const img = el('img', 'thumb');
  img.alt = `preview of ${r.target || r.url}`;
  img.loading = 'lazy';
  img.decoding = 'async';
  img.addEventListener('error', () => { td.replaceChildren(el('span', 'no-thumb', 'no picture')); }, { once: true });
  img.src = `/recordings/${r.id}/thumbnail.jpg?v=${encodeURIComponent(v)}`;
  if (videoSegments(r).length > 0) {
    const a = el('a');
    a.href = `/player.html?id=${r.id}`;
    a.append(img);
    td.append(a);
  } else {
    td.append(img);
  }
  return td;
}

function actionsCell(r) {
  const td = el('td', 'actions');
  const running = RUNNING.has(r.state);
  if (videoSegments(r).length > 0) {
    const play = el('a', 'button', 'Play');
    play.href = `/player.html?id=${r.id}`;
    td.append(play);
  }
  if (running && r.state !== 'finalizing') {
    const live = el('a', 'button live', 'Live');
    live.href = `/recordings/${r.id}/live/`;
    live.title = 'Watch the desktop now (view only)';
    td.append(live);
    const stop = el('button', 'danger', 'Stop');
    stop.type = 'button';
    stop.addEventListener('click', async () => {
      if (!confirm(`Stop recording ${r.target || r.url}? Its files are kept.`)) return;
      stop.disabled = true;
      await act(() => api(`/recordings/${r.id}`, { method: 'DELETE' }));
    });
    td.append(stop);
  } else if (!running) {
    const del = el('button', 'danger', 'Delete');
    del.type = 'button';
    del.addEventListener('click', async () => {
      if (!confirm(`Delete the files of recording ${r.id} (${r.target || r.url}, ${fmtDate(r.start)})? This cannot be undone.`)) return;
      del.disabled = true;
      await act(() => api(`/recordings/${r.id}/files`, { method: 'DELETE' }));
    });
    td.append(del);
  }
  return td;
}

async function act(call) {
  try {
    await call();
  } catch (err) {
    showError(err);
  }
  await refresh();
}

function row(r) {
  const tr = el('tr');
  tr.dataset.id = r.id;
  tr.dataset.state = r.state;
  tr.append(thumbnailCell(r));
  const target = el('td', 'target');
  target.append(el('div', 'name', r.target || '(API)'), el('div', 'url', r.url));
  tr.append(target);
  const start = el('td', 'start', fmtDate(r.start));
  start.title = r.start;
  tr.append(start);
  tr.append(el('td', 'num', fmtClock(durationOf(r))));
  tr.append(el('td', 'num', fmtBytes(sizeOf(r))));
  const state = el('td', `state ${r.state}`, r.state);
  if (r.error) {
    state.append(el('div', 'error-code', r.error.code));
    state.title = r.error.message;
  }
  tr.append(state);
  tr.append(actionsCell(r));
  return tr;
}

function showError(err) {
  const p = $('error');
  p.textContent = err ? `The daemon answered: ${err.message}` : '';
  p.hidden = !err;
  window.deskrecList.error = err ? err.message : null;
}

async function refresh() {
  clearTimeout(timer);
  const q = new URLSearchParams({ offset: String(offset), limit: String(LIMIT) });
  const state = $('filter-state').value;
  const target = $('filter-target').value.trim();
  if (state) q.set('state', state);
  if (target) q.set('target', target);
  try {
    const list = await api(`/recordings?${q}`);
    total = list.total;
    const body = $('recordings').tBodies[0];
    body.replaceChildren(...list.recordings.map(row));
    $('empty').hidden = list.recordings.length > 0;
    const active = list.recordings.filter((r) => RUNNING.has(r.state)).length;
    $('summary').textContent = `${total} recording${total === 1 ? '' : 's'}${active > 0 ? `, ${active} running on this page` : ''}`;
    $('page').textContent = total > LIMIT ? `${offset + 1}–${Math.min(total, offset + LIMIT)} of ${total}` : '';
    $('prev').disabled = offset === 0;
    $('next').disabled = offset + LIMIT >= total;
    showError(null);
    window.deskrecList = { loaded: true, ids: list.recordings.map((r) => r.id), total, error: null };
  } catch (err) {
    showError(err);
  }
  // Not while the tab is hidden: a forgotten tab must not poll the daemon all night.
  timer = setTimeout(() => { if (!document.hidden) void refresh(); }, REFRESH_MS);
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) void refresh(); });
$('prev').addEventListener('click', () => { offset = Math.max(0, offset - LIMIT); void refresh(); });
$('next').addEventListener('click', () => { offset += LIMIT; void refresh(); });
$('filter-state').addEventListener('change', () => { offset = 0; void refresh(); });
$('filter-target').addEventListener('change', () => { offset = 0; void refresh(); });
void refresh();
