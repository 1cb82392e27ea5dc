// The least a `run` can do, for bench/run-overhead.ts (`--cli bench/bare-run.cjs`): spawn the command, POST one
// pipeline event with node:http, exit with its code. What it measures over `true` is the floor of any Node
// program doing `run`'s job on the machine at hand.
/* global require, process */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose, like the bin: no ES module loader starts */
const { spawn } = require('node:child_process');
const http = require('node:http');
const argv = process.argv.slice(2);
const endpoint = argv[argv.indexOf('--endpoint') + 1];
const dash = argv.indexOf('--');
const start = new Date().toISOString();
const child = spawn(argv[dash + 1], argv.slice(dash + 2), { stdio: 'inherit' });
child.on('exit', (code) => {
  // The ID from Math.random, not node:crypto: run's IDs are made so too (one module less to load).
  const body = JSON.stringify({ data: { type: 'cipipeline_resource_request', attributes: { provider_name: 'bare', resource: {
    level: 'pipeline', unique_id: Math.random().toString(16).slice(2).padEnd(32, '0'), name: 'bare', url: 'https://ci.example/bench',
    start, end: new Date().toISOString(), status: code === 0 ? 'success' : 'error', partial_retry: false } } } });
  const req = http.request(endpoint, { method: 'POST', headers: { 'content-type': 'application/json', 'dd-api-key': process.env.DD_API_KEY || 'k' } }, (res) => {
    res.resume();
    res.on('end', () => { process.exitCode = code ?? 1; });
  });
  req.on('error', () => {
    process.exitCode = code ?? 1;
  });
  req.end(body);
});
