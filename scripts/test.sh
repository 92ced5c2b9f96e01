#!/usr/bin/env bash
# The whole test run: system tools, build, type check, lint, every jest test. `npm test` runs this and
# .ci/run calls `npm test` after `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
npx tsc -p tsconfig.build.json      # the CLI and the encode worker run from dist-ts/
npx tsc --noEmit -p tsconfig.json   # tests and benchmarks type-check too
npx eslint .
# Two workers on CI's two cores: most suites wait on servers (QEMU boots, Xvnc clients), and every test waits
# for conditions rather than for time, so they hold with a second suite (or two CPU hogs) beside them.
npx jest --ci --maxWorkers=2 "$@"
