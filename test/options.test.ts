// Options: defaults, environment fallbacks, and configuration errors that say how to fix them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveOptions } from '../src/options.js';

test('defaults: site datadoghq.com, provider custom, 1000 events, 5 MB, 30 s deadlines', () => {
  const r = resolveOptions({}, { DD_API_KEY: 'k' });
  assert.ok(r.ok);
  if (!r.ok) return;
  const o = r.options;
  assert.equal(o.delivery.endpoint, 'https://api.datadoghq.com/api/v2/ci/pipeline');
  assert.equal(o.delivery.apiKey, 'k');
  assert.equal(o.delivery.maxBatchEvents, 1000);
  assert.equal(o.delivery.maxBatchBytes, 5_000_000);
  assert.equal(o.delivery.gzip, false);
  assert.match(o.delivery.userAgent, /^datadog-ci-pipeline-exporter\/\d+\.\d+\.\d+ /);
  assert.equal(o.providerName, 'custom');
  assert.equal(o.flushTimeoutMs, 30_000);
  assert.equal(o.shutdownTimeoutMs, 30_000);
  assert.equal(o.maxEventAgeMs, 18 * 3_600_000);
});

test('site from the option, else DD_SITE; env from the option, else DD_ENV', () => {
  const a = resolveOptions({ site: 'datadoghq.eu', env: 'prod' }, { DD_API_KEY: 'k', DD_SITE: 'us5.datadoghq.com', DD_ENV: 'ci' });
  assert.ok(a.ok && a.options.delivery.endpoint === 'https://api.datadoghq.eu/api/v2/ci/pipeline' && a.options.env === 'prod');
  const b = resolveOptions({}, { DD_API_KEY: 'k', DD_SITE: 'us5.datadoghq.com', DD_ENV: 'ci' });
  assert.ok(b.ok && b.options.delivery.endpoint === 'https://api.us5.datadoghq.com/api/v2/ci/pipeline' && b.options.env === 'ci');
});

test('an unknown site is a configuration error that lists the sites', () => {
  const r = resolveOptions({ site: 'datadoghq.co' }, { DD_API_KEY: 'k' });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /option site "datadoghq\.co" is not a Datadog site/);
    assert.match(r.message, /datadoghq\.eu/);
  }
  const fromEnv = resolveOptions({}, { DD_API_KEY: 'k', DD_SITE: 'nope' });
  assert.ok(!fromEnv.ok && /DD_SITE "nope"/.test(fromEnv.message));
});

test('a missing API key is an error for Datadog, not for a custom endpoint', () => {
  const r = resolveOptions({}, {});
  assert.ok(!r.ok && /set the DD_API_KEY environment variable/.test(r.message));
  assert.ok(resolveOptions({ endpoint: 'http://127.0.0.1:1/api/v2/ci/pipeline' }, {}).ok);
});

test('bad numbers and URLs are reported together, never thrown; the key never appears', () => {
  const r = resolveOptions({ apiKey: 'SECRET-KEY-123', maxBatchEvents: 5000, maxBatchBytes: -1, endpoint: 'ftp://x' }, {});
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /maxBatchEvents must be a whole number from 1 to 1000, got 5000/);
    assert.match(r.message, /maxBatchBytes/);
    assert.match(r.message, /endpoint must be an http\(s\) URL/);
    assert.doesNotMatch(r.message, /SECRET-KEY-123/);
  }
});

test('null is the same as leaving an option out', () => {
  const r = resolveOptions({ apiKey: null, site: null, maxBatchEvents: null, retry: null, gzip: null, proxy: null, logger: null } as never, { DD_API_KEY: 'k' });
  assert.ok(r.ok);
  if (r.ok) {
    assert.equal(r.options.delivery.apiKey, 'k');
    assert.equal(r.options.delivery.maxBatchEvents, 1000);
    assert.equal(r.options.delivery.gzip, false);
  }
});

test('every option of the wrong type is a problem that names it, one per option', () => {
  const wrong: Record<string, unknown> = {
    apiKey: 1, site: 1, endpoint: 1, providerName: 1, env: 1, service: 1, maxBatchEvents: 'x', maxBatchBytes: 'x',
    requestTimeoutMs: 'x', maxConcurrentRequests: 'x', maxQueuedEvents: 'x', retry: 'x', maxPendingSpans: 'x',
    maxRememberedSpans: 'x', maxEventAgeMs: 'x', flushTimeoutMs: 'x', shutdownTimeoutMs: 'x', gzip: 'x', spoolDir: 1,
    proxy: 1, logger: 1,
  };
  const r = resolveOptions(wrong as never, { DD_API_KEY: 'k' });
  assert.ok(!r.ok);
  if (r.ok) return;
  for (const name of Object.keys(wrong)) {
    assert.equal(r.problems.filter((p) => p.includes(`option ${name} must be`)).length, 1, `${name}: ${r.message}`);
  }
});

test('the API key (option or DD_API_KEY) pasted into another option is not repeated, even clipped', () => {
  const key = 'abcdef0123456789abcdef0123456789';
  for (const [o, env] of [
    [{ apiKey: key, site: `${'s'.repeat(70)}${key}` }, {}],
    [{ site: `${'s'.repeat(70)}${key}` }, { DD_API_KEY: key }],
    [{ apiKey: key, maxBatchEvents: [`${'s'.repeat(60)}${key}`] }, {}],
  ] as const) {
    const r = resolveOptions(o as never, env);
    assert.ok(!r.ok);
    if (!r.ok) for (let i = 0; i + 8 <= key.length; i++) assert.ok(!r.message.includes(key.slice(i, i + 8)), r.message);
  }
});
