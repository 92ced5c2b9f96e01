#!/usr/bin/env node
'use strict';
// The compiled CLI lives in dist-ts/ (built by `npm ci` through the prepare script).
const { main } = require('../dist-ts/src/cli/main.js');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
