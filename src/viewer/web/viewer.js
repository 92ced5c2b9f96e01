// The viewer page: noVNC connected to deskrec's RFB server on /websockify, plus the bar around it (state,
// control, recording indicator, Ctrl-Alt-Del, clipboard, screenshot). Plain ES module, no bundler: noVNC's
// modules are served by deskrec from the installed package under ./novnc/.
import RFB from './novnc/core/rfb.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
// An id for this tab, so /status can say whether this tab holds control. getRandomValues works on plain
// http too (randomUUID needs a secure context).
const client = Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, '0')).join('');
const $ = (id) => document.getElementById(id);

// Keep the token out of the address bar once the cookie holds it (screenshots and screen shares of the
// browser then do not show it); the cookie carries it from here on.
if (token !== '') history.replaceState(null, '', location.pathname);

const wsUrl = new URL('websockify', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
wsUrl.search = `client=${client}`;

let rfb = null;
let socketState = 'connecting';
let retryMs = 500;
let status = null;
let fit = false;

function connect() {
  rfb = new RFB($('screen'), wsUrl.href, { shared: true });
  rfb.scaleViewport = false;
  rfb.resizeSession = fit;
  rfb.focusOnClick = true;
  rfb.addEventListener('connect', () => { socketState = 'connected'; retryMs = 500; render(); rfb.focus(); });
  // The remote's clipboard (VNC): shown in the clipboard box, ready to copy or to edit and send back.
  rfb.addEventListener('clipboard', (e) => {
    $('clip-text').value = e.detail.text;
    window.deskrecViewer.remoteClipboard = e.detail.text;
    $('paste').title = 'The remote clipboard has new text; send text to it';
  });
  rfb.addEventListener('disconnect', () => {
    socketState = 'disconnected';
    render();
    // deskrec itself went away or restarted: try again with backoff; the page stays as it was meanwhile.
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 8000);
  });
  window.deskrecViewer.rfb = rfb;
}

function fmtTime(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function render() {
  const st = $('state');
  let text;
  let cls;
  if (socketState !== 'connected') {
    text = socketState === 'connecting' ? 'connecting…' : 'viewer unreachable, retrying…';
    cls = socketState === 'connecting' ? 'connecting' : 'error';
  } else if (status === null) {
    text = 'connected'; cls = 'live';
  } else if (status.state === 'reconnecting') {
    text = 'reconnecting…'; cls = 'reconnecting';
  } else if (status.state === 'ended') {
    text = 'session ended'; cls = 'ended';
  } else if (status.state === 'connecting') {
    text = 'connecting…'; cls = 'connecting';
  } else {
    text = 'live'; cls = 'live';
  }
  st.textContent = text;
  st.className = `state ${cls}`;
  st.title = status && status.detail ? status.detail : '';
  document.body.dataset.state = cls;
  if (status !== null) {
    $('target').textContent = status.target ? `${status.target}${status.width ? ` · ${status.width}×${status.height}` : ''}` : '';
    const viewOnly = status.control === false;
    $('control').textContent = viewOnly ? 'view only' : (status.viewers > 1 ? `${status.viewers} viewers` : '');
    $('control').className = viewOnly ? 'view-only' : '';
    document.body.dataset.control = viewOnly ? 'view-only' : 'control';
    if (rfb !== null) rfb.viewOnly = viewOnly;
    $('cad').disabled = viewOnly;
    $('fit').hidden = viewOnly || !status.canResize;
    $('paste').disabled = viewOnly;
    const rec = status.recording;
    $('rec').hidden = rec === null;
    if (rec !== null) {
      $('rec-time').textContent = fmtTime(rec.elapsedMs);
      $('rec-size').textContent = `${(rec.bytes / 1e6).toFixed(1)} MB`;
      $('rec').title = `recording to ${rec.dir}: ${rec.frames} frames`;
    }
  }
}

async function poll() {
  try {
    const res = await fetch(`status?client=${client}`, { cache: 'no-store' });
    status = res.ok ? await res.json() : null;
  } catch {
    status = null;
  }
  render();
  window.deskrecViewer.status = status;
  setTimeout(poll, 1000);
}

window.deskrecViewer = { rfb: null, status: null, client };
$('cad').addEventListener('click', () => { if (rfb) rfb.sendCtrlAltDel(); });
// Off by default: resizing someone's remote desktop is a choice, not a side effect of a browser window.
$('fit').addEventListener('click', () => {
  if (!rfb) return;
  fit = !fit;
  rfb.resizeSession = fit;
  $('fit').setAttribute('aria-pressed', String(fit));
});
$('paste').addEventListener('click', () => { $('clip').showModal(); });
$('clip').addEventListener('close', () => {
  if ($('clip').returnValue === 'send' && rfb) rfb.clipboardPasteFrom($('clip-text').value);
});
connect();
poll();
