// Runs inside Chromium (plain browser JavaScript, not type-checked with the Node sources): loads a video,
// plays it to the end, then seeks to each given time and samples the centre pixel of the frame drawn.
/* global document, requestAnimationFrame, window */
window.seekCheck = async function seekCheck(src, times) {
  const v = document.getElementById('v');
  const c = document.getElementById('c');
  const once = (ev) => new Promise((resolve, reject) => {
    v.addEventListener(ev, () => resolve(), { once: true });
    v.addEventListener('error', () => reject(new Error(`video error ${v.error ? v.error.code : '?'}: ${v.error ? v.error.message : ''}`)), { once: true });
  });
  v.src = src;
  await once('loadedmetadata');
  const duration = v.duration;
  v.playbackRate = 4;
  const ended = once('ended');
  await v.play();
  await ended;
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  const ctx = c.getContext('2d');
  const samples = [];
  for (const t of times) {
    const seeked = once('seeked');
    v.currentTime = t;
    await seeked;
    await new Promise((r) => requestAnimationFrame(() => r(null)));
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
    samples.push([t, d[0], d[1], d[2]]);
  }
  return { duration, width: v.videoWidth, height: v.videoHeight, samples };
};
