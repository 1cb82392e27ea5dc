// Proxies: CI runners behind a corporate proxy set HTTPS_PROXY/NO_PROXY, or pass the proxy
// option. A real forward proxy on loopback (CONNECT tunnels and absolute-URI requests) shows
// which requests went through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { createDelivery } from '../src/delivery/index.js';
import { resolveOptions } from '../src/options.js';
import { startIntake } from '../testkit/intake.js';
import { acceptedNames, fastConfig, jobEvents, namesOf, recordingDiagnostics } from '../testkit/fault-helpers.js';

interface Proxy {
  url: string;
  /** Requests or tunnels the proxy handled. */
  used: () => number;
  close: () => Promise<void>;
}

async function startProxy(): Promise<Proxy> {
  let used = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    // Absolute-URI form: forward the request as it is.
    used++;
    const target = new URL(req.url ?? '');
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req, client: Socket) => {
    used++;
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    used: () => used,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Sets environment variables for the duration of one test. */
function withEnv(t: { after: (fn: () => void) => void }, vars: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

async function deliverThrough(config: ReturnType<typeof fastConfig>, n = 4) {
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(config, diagnostics);
  const events = jobEvents('via-proxy', n);
  const ok = await d.send(events);
  await d.shutdown(1_000);
  return { ok, events };
}

test('the proxy option sends every request through the proxy', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake();
  const proxy = await startProxy();
  t.after(async () => {
    await proxy.close();
    await intake.close();
  });
  const { ok, events } = await deliverThrough(fastConfig(intake.endpoint, { proxy: proxy.url }));
  assert.equal(ok, true);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  assert.ok(proxy.used() >= 1, 'the proxy saw the request');
});

test('HTTP_PROXY in the environment is honoured, NO_PROXY and proxy: false bypass it', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake();
  const proxy = await startProxy();
  t.after(async () => {
    await proxy.close();
    await intake.close();
  });
  withEnv(t, { HTTP_PROXY: proxy.url, http_proxy: proxy.url, NO_PROXY: '', no_proxy: '' });
  assert.equal((await deliverThrough(fastConfig(intake.endpoint))).ok, true);
  const viaEnv = proxy.used();
  assert.ok(viaEnv >= 1, 'HTTP_PROXY was used');

  assert.equal((await deliverThrough(fastConfig(intake.endpoint, { proxy: false }))).ok, true);
  assert.equal(proxy.used(), viaEnv, 'proxy: false connects directly');

  withEnv(t, { NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' });
  assert.equal((await deliverThrough(fastConfig(intake.endpoint))).ok, true);
  assert.equal(proxy.used(), viaEnv, 'NO_PROXY bypasses the proxy');
  assert.equal(intake.acceptedCount(), 12);
});

test('a malformed proxy option is a configuration error that does not repeat the URL', () => {
  const r = resolveOptions({ endpoint: 'http://127.0.0.1:1/x', proxy: 'user:s3cret@nowhere' }, {});
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /option proxy must be an http\(s\) URL/);
    assert.doesNotMatch(r.message, /s3cret/);
  }
});
