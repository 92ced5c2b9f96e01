#!/usr/bin/env -S node --max-semi-space-size=1 --no-liftoff --single-threaded-gc --interrupt-budget=1048576
'use strict';
// The compiled CLI lives in dist-ts/ (built by `npm ci` through the prepare script).
//
// --max-semi-space-size=1 (MB): V8 otherwise lets the main thread's young generation grow to 16 MB per
// semi-space while a recording runs (socket chunks, decoded rectangles and per-frame bookkeeping all die
// young), and those pages stay resident: 165 → 138 MB peak RSS for the live 1024x768 VNC bench, at the
// same CPU (docs/BENCHMARKS.md, "Issue 12, fourth round"). V8 reads it only at start-up, so it lives here
// in the line that starts node; `node bin/deskrec.js …` runs without it (correct, only larger), and the
// bench reads this line to start deskrec as `deskrec …` does (bench/proc.ts nodeFlagsOf).
// --no-liftoff: the WebAssembly encoder is compiled once by the optimising compiler, instead of baseline
// code for every function plus a second compile of the hot ones, whose code and compile zones stayed
// resident: 144 → 138 MB on the same bench, CPU 0.99x in a replay A/B.
// --single-threaded-gc: the collector works on the thread that allocates, without helper threads. The SPICE
// display allocates per draw message (thousands a second), and V8's parallel scavenges and concurrent
// marking spent 1.5 CPU-s per 30 s on helper threads beside the main thread's own pauses; done on one thread
// the same collections cost less in all: real-time replay of the SPICE bench's capture, 5 runs each,
// median 9.66 → 9.16 CPU-s (0.95x); the VNC capture 2.64 → 2.59 (3 runs each, within noise). Its pauses
// were no longer (--trace-gc, same replay: longest 7.4 ms against 10.4 ms).
// --interrupt-budget=1048576 (bytes of bytecode, default 67584): a function is handed to the optimising
// compiler after about 16 times more work. A recording's per-frame bookkeeping runs a few dozen times a second,
// so with the default V8 optimised (and deoptimised, and optimised again) hundreds of small functions in the
// first seconds, on helper threads, for code that then saves little. Hot loops (decoders, copies) still tier up
// within a second or two; a long recording reaches the same optimised code, later. Measured: the live VNC
// bench section (3 rounds of 30 s beside x11grab) 4.72/4.93/4.96 → 4.27/4.34/4.41 CPU-s/min, ratio 0.69 →
// 0.65; real-time replay of its capture, 6 runs each, median 2.29 → 2.14 CPU-s; at full speed 1.45 → 1.34;
// the SPICE capture's real-time replay 8.44 → 8.53 (within noise). 4x the default (262144) gave 2.16.
const { main } = require('../dist-ts/src/cli/main.js');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
