// undici is loaded lazily, in parts (src/delivery/undici.ts): importing the package loads none of
// it; the exporter's construction starts the load; an export() that comes before the load has
// finished still delivers; the load takes undici's agent, client and request files, not its
// entry; and the entry (the fallback, and what proxies use) gives a transport that works the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startIntake } from '../testkit/intake.js';
import { loadEntry, loadParts } from '../src/delivery/undici.js';
import { createTransport } from '../src/delivery/transport.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs an ES module snippet under tsx in a fresh process; its last stdout line is JSON. */
function child(code: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; out: Record<string, unknown>; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += String(c)));
    p.stderr.on('data', (c: Buffer) => (stderr += String(c)));
    p.on('close', (status) => {
      let out: Record<string, unknown> = {};
      try {
        out = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      } catch {
        out = { stdout };
      }
      resolve({ status, out, stderr });
    });
  });
}

test('importing the package loads no undici; an export() before undici has loaded is delivered; only its parts are loaded', { timeout: 60_000 }, async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const code = `
    import { createRequire } from 'node:module';
    import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
    const cache = createRequire(import.meta.url).cache;
    const undiciFiles = () => Object.keys(cache).filter((f) => /[\\\\/]node_modules[\\\\/]undici[\\\\/]/.test(f));
    const { DatadogCIPipelineExporter } = await import('./src/index.ts');
    const afterImport = undiciFiles().length;
    const exporter = new DatadogCIPipelineExporter({ endpoint: process.env.ENDPOINT, apiKey: 'k', service: 's', logger: () => undefined });
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    // SimpleSpanProcessor calls export() at end(), in this same tick: undici cannot have loaded yet.
    provider.getTracer('t').startSpan('early', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/1' } }).end();
    const atExport = undiciFiles().length;
    await provider.shutdown();
    const files = undiciFiles();
    console.log(JSON.stringify({ afterImport, atExport, loaded: files.length, entry: files.some((f) => /[\\\\/]undici[\\\\/]index\\.js$/.test(f)), sent: exporter.getCounters().eventsSent, retried: exporter.getCounters().eventsRetried }));
  `;
  const r = await child(code, { ENDPOINT: intake.endpoint, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.out.afterImport, 0, 'the import loaded undici');
  assert.equal(r.out.atExport, 0, 'undici was already loaded at the first export(): the test did not test the early case');
  assert.equal(r.out.sent, 1, JSON.stringify(r.out));
  assert.equal(r.out.retried, 0, 'the first request waited for undici, not failed and retried');
  assert.equal(r.out.entry, false, "undici's entry was loaded");
  assert.ok((r.out.loaded as number) > 0);
  await intake.waitForEvents(1, 10_000);
  assert.deepEqual(intake.events.map((e) => e.attributes.resource.name), ['early']);
});

test("undici's parts and its entry both give a transport that posts and reads the answer", { timeout: 30_000 }, async (t) => {
  const intake = await startIntake({ respond: () => ({ status: 400, body: { errors: [{ detail: 'no such thing' }] } }) });
  t.after(() => intake.close());
  const parts = await loadParts();
  const entry = await loadEntry();
  assert.equal(parts.via, 'parts');
  assert.equal(entry.via, 'entry');
  for (const u of [parts, entry]) {
    const agent = new u.Agent({});
    try {
      const url = new URL(intake.endpoint);
      const res = await u.request.call(agent, { origin: url.origin, path: url.pathname, method: 'POST', body: '{"data":[]}', headers: { 'content-type': 'application/json' } });
      assert.equal(res.statusCode, 400);
      assert.match(await res.body.text(), /no such thing/);
    } finally {
      await agent.destroy();
    }
  }
  // And through the transport, which uses whichever loaded (parts here).
  const transport = createTransport({ endpoint: intake.endpoint, apiKey: 'k', userAgent: 'test', gzip: false, maxConnections: 1, proxy: false });
  const r = await transport.post('{"data":[]}', 5_000, new AbortController().signal);
  await transport.close();
  assert.equal(r.kind, 'response');
  assert.equal(r.kind === 'response' ? r.status : 0, 400);
});
