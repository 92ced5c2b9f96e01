/**
 * The live VNC bench runs deskrec and x11grab in several rounds, in turn, and takes target 1's ratio as the
 * median of the rounds' own ratios (bench/vnc-live.ts): the order of the runs and the arithmetic.
 */
import { median, pairedRatio, runPlan, type VncRecorderResult } from '../../bench/vnc-live';

const names = ['deskrec', 'deskrec --encoder x264', 'gst rfbsrc+x264enc', 'ffmpeg x11grab+libx264'].map((name) => ({ name }));

test('deskrec and x11grab run in every round, the first of them alternating; the others once, in round 1', () => {
  const plan = runPlan(names, 3).map(([r, round]) => `${round}:${r.name.split(' ')[0] ?? ''}`);
  expect(plan).toEqual(['1:deskrec', '1:ffmpeg', '1:deskrec', '1:gst', '2:ffmpeg', '2:deskrec', '3:deskrec', '3:ffmpeg']);
  expect(runPlan(names, 1)).toHaveLength(4);
  // A subset (BENCH_VNC_ONLY) keeps its own: no x11grab, deskrec alone each round.
  expect(runPlan([{ name: 'deskrec' }], 2).map(([r, round]) => `${round}:${r.name}`)).toEqual(['1:deskrec', '2:deskrec']);
});

function run(name: string, round: number, cpuPerMin: number): VncRecorderResult {
  return {
    name, round, liveCpuS: cpuPerMin, liveS: 60, totalCpuS: cpuPerMin, wallS: 62, recordedS: 62, bytes: 1, psnr: 50,
    xvncCpuS: 1, peakRssMB: 100, exitCode: 0,
  };
}

test('the ratio is the median of each round\'s deskrec/x11grab, not the ratio of medians', () => {
  const isX = (n: string): boolean => n.startsWith('ffmpeg');
  // The machine slows in round 2: both recorders cost more there, and the round's own ratio holds.
  const results = [run('deskrec', 1, 5), run('ffmpeg x', 1, 10), run('ffmpeg x', 2, 20), run('deskrec', 2, 12),
    run('deskrec', 3, 7), run('ffmpeg x', 3, 10)];
  expect(pairedRatio(results, 'deskrec', isX)).toBeCloseTo(0.6, 10); // rounds 0.5, 0.6, 0.7 (medians: 7 / 10)
  // A round without its x11grab does not count; none at all gives no ratio.
  expect(pairedRatio(results.slice(0, 3), 'deskrec', isX)).toBeCloseTo(0.5, 10);
  expect(pairedRatio([run('deskrec', 1, 5)], 'deskrec', isX)).toBeUndefined();
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
});
