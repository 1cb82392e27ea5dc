// Secrets never leave the machine: the pure scrubbing functions on each field and form, and whole
// request bodies received by the real intake: no credential, no secret parameter value, no API key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import fc from 'fast-check';
import { resolveOptions } from '../src/options.js';
import {
  apiKeyNeedle,
  redactApiKey,
  resolveRedactParameters,
  scrubEvent,
  scrubText,
  scrubUrl,
  wordsRedactor,
  DEFAULT_SECRET_PARAMETER_WORDS,
} from '../src/mapping/scrub.js';
import { assertAllValid, ci, resourceNamed, runTree, SHA, startHarness } from './support/trace-helpers.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

test('scrubUrl: credentials out of URLs, scheme, host and path kept', () => {
  const cases: Array<[string, string]> = [
    ['https://gitlab-ci-token:xyz@gitlab.com/a/b.git', 'https://gitlab.com/a/b.git'],
    ['https://ghp_abcdef123456@github.com/o/r.git', 'https://github.com/o/r.git'],
    ['HTTP://user:p%40ss@host.example:8080/x?y=1#z', 'HTTP://host.example:8080/x?y=1#z'],
    ['https://user:pa@ss@host.example/p', 'https://host.example/p'],
    ['ssh://git:s3cret@github.com/o/r.git', 'ssh://git@github.com/o/r.git'],
    ['ssh://git@github.com/o/r.git', 'ssh://git@github.com/o/r.git'],
    ['git:ghp_tok3n@github.com:o/r.git', 'git@github.com:o/r.git'],
    ['git@github.com:o/r.git', 'git@github.com:o/r.git'],
    ['https://host.example/a?token=abc&page=2', 'https://host.example/a?token=[redacted]&page=2'],
    ['https://host.example/a?access_token=abc', 'https://host.example/a?access_token=[redacted]'],
    ['https://blob.example/f?sv=2020&sig=Zm9v%2Bbar&se=2030', 'https://blob.example/f?sv=2020&sig=[redacted]&se=2030'],
    ['https://s3.example/o?X-Amz-Credential=AKIA&X-Amz-Signature=abc#frag', 'https://s3.example/o?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]#frag'],
    ['https://dev.azure.com/o/p/_build/results?buildId=1&view=logs&j=2&t=3', 'https://dev.azure.com/o/p/_build/results?buildId=1&view=logs&j=2&t=3'],
    ['https://ci.example.com/builds/42', 'https://ci.example.com/builds/42'],
    ['mailto:someone@example.com', 'mailto:someone@example.com'],
  ];
  for (const [input, expected] of cases) assert.equal(scrubUrl(input), expected, input);
  // Idempotent: a scrubbed URL stays as it is.
  for (const [, expected] of cases) assert.equal(scrubUrl(expected), expected, expected);
});

test('scrubUrl, property: no password survives, scheme, host and path are kept, scrubbing twice changes nothing', () => {
  const word = fc.stringMatching(/^[A-Za-z0-9._~-]{1,20}$/);
  const secret = fc.stringMatching(/^[A-Za-z0-9_~%!$&'()*+,;=-]{6,30}$/).map((s) => `S3cr3t${s}`);
  fc.assert(
    fc.property(fc.constantFrom('https', 'http', 'ssh', 'git+ssh'), word, secret, fc.array(word, { maxLength: 4 }), (scheme, user, password, path) => {
      const tail = `/${path.join('/')}`;
      const url = `${scheme}://${user}:${password}@git.example.com:8443${tail}`;
      const out = scrubUrl(url);
      assert.ok(!out.includes(password), `${url} → ${out}`);
      const kept = scheme.startsWith('http') ? '' : `${user}@`;
      assert.equal(out, `${scheme}://${kept}git.example.com:8443${tail}`);
      assert.equal(scrubUrl(out), out);
      assert.ok(!scrubText(`failed: ${url} (exit 128)`).includes(password));
    }),
    { numRuns: 300 },
  );
});

test('scrubText: URLs inside an error message', () => {
  assert.equal(
    scrubText("fatal: unable to access 'https://oauth2:glpat-XYZ@gitlab.com/g/p.git/': 403; see https://docs.example/x?token=t0k for help"),
    "fatal: unable to access 'https://gitlab.com/g/p.git/': 403; see https://docs.example/x?token=[redacted] for help",
  );
  const plain = 'exit code 2: user@host said no';
  assert.equal(scrubText(plain), plain);
});

test('scrubEvent: every URL field, error message and stack, parameters by key and value', () => {
  const shared = { git: { repository_url: 'https://u:sharedpw@git.example/r.git', sha: SHA } };
  const r: Record<string, unknown> = {
    level: 'pipeline',
    name: 'p',
    url: 'https://bot:urlpw@ci.example/p/1',
    git: { repository_url: 'https://x-access-token:gitpw@github.com/o/r.git', sha: SHA },
    parent_pipeline: { id: 'x', url: 'https://ci.example/p/0?private_token=parentpw' },
    previous_attempt: { id: 'y', url: 'https://a:attemptpw@ci.example/p/1/attempts/1' },
    error: { message: 'push to https://me:errpw@git.example/r.git failed', stack: 'at https://s:stackpw@h/x' },
    parameters: {
      DB_PASSWORD: 'hunter2',
      github_token: 'ghp_1',
      AWS_SECRET_ACCESS_KEY: 'aws1',
      npm_auth: 'n1',
      SSH_KEY: 'k1',
      MY_CREDENTIALS: 'c1',
      DB_PASSWD: 'p1',
      MIRROR: 'https://mirror:mirrorpw@repo.example/m',
      TARGET: 'prod',
    },
  };
  // A parameter named __proto__ is an own property, as the mapping makes it (written back in place, like any other).
  Object.defineProperty(r.parameters, '__proto__', { value: 'https://proto:protopw@repo.example/p', enumerable: true, writable: true, configurable: true });
  scrubEvent(r, shared, { redactParameter: wordsRedactor(DEFAULT_SECRET_PARAMETER_WORDS) });
  const json = JSON.stringify({ r, shared });
  for (const secret of ['sharedpw', 'urlpw', 'gitpw', 'parentpw', 'attemptpw', 'errpw', 'stackpw', 'hunter2', 'ghp_1', 'aws1', 'n1', 'k1', 'c1', 'p1', 'mirrorpw', 'protopw']) {
    assert.ok(!json.includes(secret), `${secret} in ${json}`);
  }
  assert.equal(r.url, 'https://ci.example/p/1');
  assert.equal((r.git as Record<string, string>).repository_url, 'https://github.com/o/r.git');
  assert.equal(shared.git.repository_url, 'https://git.example/r.git');
  assert.deepEqual(r.parent_pipeline, { id: 'x', url: 'https://ci.example/p/0?private_token=[redacted]' });
  assert.equal((r.parameters as Record<string, string>).DB_PASSWORD, '[redacted]');
  assert.equal((r.parameters as Record<string, string>).MIRROR, 'https://repo.example/m');
  assert.equal((r.parameters as Record<string, string>).TARGET, 'prod');
  assert.equal(Object.getOwnPropertyDescriptor(r.parameters, '__proto__')?.value, 'https://repo.example/p');
});

test('redactParameters: default words, a list instead, a RegExp, false, and a bad value', () => {
  const dflt = resolveRedactParameters(undefined);
  assert.ok(dflt.ok && dflt.redactor);
  for (const k of ['token', 'My_Secret', 'PASSWORD', 'passwd', 'apikey', 'credential_file', 'OAUTH']) assert.equal(dflt.redactor(k), true, k);
  assert.equal(dflt.redactor('BUILD_TYPE'), false);

  const list = resolveRedactParameters(['internal', 'a.b']);
  assert.ok(list.ok && list.redactor);
  assert.equal(list.redactor('INTERNAL_URL'), true);
  assert.equal(list.redactor('TOKEN'), false, 'a list replaces the default words');
  assert.equal(list.redactor('axb'), false, 'words are not patterns');

  const re = resolveRedactParameters(/^secret_/gi);
  assert.ok(re.ok && re.redactor);
  // A global RegExp would alternate between true and false through lastIndex.
  assert.deepEqual([re.redactor('SECRET_A'), re.redactor('SECRET_A'), re.redactor('not_secret')], [true, true, false]);

  const off = resolveRedactParameters(false);
  assert.ok(off.ok && off.redactor === undefined);

  const bad = resolveOptions({ endpoint: 'http://127.0.0.1:1/', redactParameters: 'TOKEN' as unknown as string[] });
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.message : '', /option redactParameters must be a list of key substrings \(e.g. \['TOKEN', 'SECRET'\]\), a RegExp or false, got "TOKEN"/);
  const badDetect = resolveOptions({ endpoint: 'http://127.0.0.1:1/', detectEnvironment: 'no' as unknown as boolean });
  assert.match(!badDetect.ok ? badDetect.message : '', /option detectEnvironment must be true or false/);
});

test('redactApiKey: the key replaced wherever it appears; keys too short to look for are left alone', () => {
  const key = 'c0ffee0123456789abcdef0123456789';
  const needle = apiKeyNeedle(key);
  assert.equal(redactApiKey(`{"a":"x${key}y","b":"${key}"}`, needle), '{"a":"x[redacted]y","b":"[redacted]"}');
  assert.equal(apiKeyNeedle('abc'), undefined);
  const same = '{"name":"abc"}';
  assert.equal(redactApiKey(same, apiKeyNeedle('abc')), same);
});

const API_KEY = 'f00dbabe0123456789abcdef01234567';
const SECRETS = ['urlsecret', 'gitsecret', 'parentsecret', 'attemptsecret', 'errsecret', 'hunter2', 'ghp_wire', 'mirrorsecret', 'querysecret', API_KEY];

test('on the wire: request bodies carry no credential, no secret parameter value, and not the API key', async (t) => {
  const h = await startHarness(t, { exporter: { apiKey: API_KEY, detectEnvironment: false } });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p', {
      'ci.url': 'https://bot:urlsecret@ci.example/p/1?access_token=querysecret',
      'ci.git.repository_url': 'https://x-access-token:gitsecret@github.com/o/r.git',
      'ci.git.sha': SHA,
      'ci.git.author_email': 'a@example.com',
      'ci.git.branch': 'main',
      'ci.parent_pipeline.id': '11111111-2222-3333-4444-555555555555',
      'ci.parent_pipeline.url': 'https://u:parentsecret@ci.example/p/0',
      'ci.previous_attempt.id': '11111111-2222-3333-4444-666666666666',
      'ci.previous_attempt.url': 'https://ci.example/p/1/attempts/1?token=attemptsecret',
      'ci.parameters.DB_PASSWORD': 'hunter2',
      'ci.parameters.GITHUB_TOKEN': 'ghp_wire',
      'ci.parameters.MIRROR': 'https://m:mirrorsecret@mirror.example/npm',
      'ci.parameters.ECHOED': `the key is ${API_KEY}`,
      'ci.parameters.TARGET': 'prod',
    }),
    children: [
      {
        name: 'j',
        attributes: ci('job', 'j'),
        status: { code: SpanStatusCode.ERROR, message: `git push https://me:errsecret@git.example/r.git failed (DD_API_KEY=${API_KEY})` },
      },
    ],
  });
  await h.flush();
  assertAllValid(h.intake);
  assert.equal(h.intake.events.length, 2);
  for (const r of h.intake.requests) {
    const body = JSON.stringify(r.body);
    for (const secret of SECRETS) assert.ok(!body.includes(secret), `${secret} sent in ${body}`);
  }
  const p = resourceNamed(h.intake, 'p');
  assert.equal(p.url, 'https://ci.example/p/1?access_token=[redacted]');
  assert.equal((p.git as Record<string, string>).repository_url, 'https://github.com/o/r.git');
  assert.deepEqual(p.parameters, {
    DB_PASSWORD: '[redacted]',
    GITHUB_TOKEN: '[redacted]',
    MIRROR: 'https://mirror.example/npm',
    ECHOED: 'the key is [redacted]',
    TARGET: 'prod',
  });
  const j = resourceNamed(h.intake, 'j');
  assert.equal((j.error as Record<string, string>).message, 'git push https://git.example/r.git failed (DD_API_KEY=[redacted])');
  // The key still authenticates the requests: only its header carries it.
  assert.equal(h.intake.requests[0]!.headers['dd-api-key'], API_KEY);
});

test('on the wire: redactParameters chooses the keys (a list, or false for none)', async (t) => {
  const list = await startHarness(t, { exporter: { redactParameters: ['internal'], detectEnvironment: false } });
  const none = await startHarness(t, { exporter: { redactParameters: false, detectEnvironment: false } });
  for (const h of [list, none]) {
    runTree(h.tracer, {
      name: 'p',
      attributes: ci('pipeline', 'p', { 'ci.parameters.INTERNAL_HOST': 'h1', 'ci.parameters.NPM_TOKEN': 'n1', 'ci.parameters.URL': 'https://u:pw@x.example/' }),
    });
  }
  await Promise.all([list.flush(), none.flush()]);
  assert.deepEqual(resourceNamed(list.intake, 'p').parameters, { INTERNAL_HOST: '[redacted]', NPM_TOKEN: 'n1', URL: 'https://x.example/' });
  // No key-based redaction; credentials in URLs are still removed.
  assert.deepEqual(resourceNamed(none.intake, 'p').parameters, { INTERNAL_HOST: 'h1', NPM_TOKEN: 'n1', URL: 'https://x.example/' });
});
