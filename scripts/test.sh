#!/usr/bin/env bash
# The whole test run: system tools, build, type check, lint, every jest test. `npm test` runs this and
# .ci/run calls `npm test` after `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-tools.sh
npx tsc -p tsconfig.build.json      # the CLI and the encode worker run from dist-ts/
npx tsc --noEmit -p tsconfig.json   # tests and benchmarks type-check too
npx eslint .
npx jest --ci "$@"
