// The undici parser warm-up (src/delivery/parser-warm-up.ts): it runs once per process, leaves
// no server or socket behind, and a process that only builds an exporter still exits on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { warmUpHttpParser } from '../src/delivery/parser-warm-up.js';

test('warm-up: once per process, answered, and nothing left open afterwards', async (t) => {
  // Its handles are unref'd, so no list of active handles shows them: catch the server itself.
  const servers: Server[] = [];
  const listen = Server.prototype.listen;
  t.after(() => {
    Server.prototype.listen = listen;
  });
  Server.prototype.listen = function (this: Server, ...args: unknown[]) {
    servers.push(this);
    return (listen as (...a: unknown[]) => Server).apply(this, args);
  } as typeof listen;
  let requests = 0;
  const first = warmUpHttpParser();
  assert.equal(warmUpHttpParser(), first);
  assert.equal(servers.length, 1);
  servers[0]!.on('connection', (s) => s.once('data', () => requests++));
  await first;
  assert.equal(requests, 1, 'the parser ran on one real response');
  assert.equal(servers[0]!.listening, false);
  const open = await new Promise<number>((resolve, reject) => servers[0]!.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  assert.equal(open, 0);
  assert.equal(warmUpHttpParser(), first, 'once per process');
  assert.equal(servers.length, 1);
});

test('warm-up: a process that only builds an exporter exits on its own, silently', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const code = `
    import { DatadogCIPipelineExporter } from './src/index.ts';
    new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'k', service: 's' });
  `;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  assert.ok(Date.now() - t0 < 15_000);
});
