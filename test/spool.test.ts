// The durable spool: written at shutdown (or when retries run out), sent first by the next
// delivery on the same directory, robust to corrupt and foreign files and to sharing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDelivery } from '../src/delivery/index.js';
import { isAlive, Spool, SPOOL_FORMAT, SPOOL_VERSION } from '../src/delivery/spool.js';
import type { ReadyEvent } from '../src/delivery/types.js';
import { startIntake } from '../testkit/intake.js';
import { acceptedNames, fastConfig, jobEvents, namesOf, recordingDiagnostics } from '../testkit/fault-helpers.js';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'spool-test-'));
  made.push(d);
  return d;
}

function spoolFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^spool-.*\.json$/.test(n));
}

const noWarnings = { movedAside: () => assert.fail('nothing should be moved aside') };

/** An endpoint where connections are refused. */
async function deadEndpoint(): Promise<string> {
  const i = await startIntake();
  await i.close();
  return i.endpoint;
}

test('endpoint down at shutdown: events spooled, one file per batch; the next delivery sends them first', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const first = recordingDiagnostics();
  const a = createDelivery(fastConfig(await deadEndpoint(), { spoolDir, maxBatchEvents: 10, retry: { deadlineMs: 30_000 } }), first.diagnostics);
  const old = jobEvents('prev', 25);
  const sent = a.send(old);
  const started = Date.now();
  await a.shutdown(600);
  assert.ok(Date.now() - started < 3_000, 'shutdown kept its deadline (retries alone would take 30 s)');
  assert.equal(await sent, false);
  assert.equal(first.diagnostics.counters.spooled, 25);
  assert.equal(first.diagnostics.totalDropped(), 0);
  assert.equal(first.diagnostics.counters.queued, 0);
  assert.equal(spoolFiles(spoolDir).length, 3);
  assert.deepEqual(readdirSync(spoolDir).filter((n) => n.startsWith('.')), [], 'no temp file left');

  const intake = await startIntake();
  t.after(() => intake.close());
  const second = recordingDiagnostics();
  const b = createDelivery(fastConfig(intake.endpoint, { spoolDir, maxBatchEvents: 10 }), second.diagnostics);
  const fresh = jobEvents('next', 5);
  assert.equal(await b.send(fresh), true);
  await b.flush(3_000);
  assert.deepEqual(acceptedNames(intake), namesOf([...old, ...fresh]));
  const firstThree = intake.requests.slice(0, 3).flatMap((r) => r.events.map((e) => e.attributes.resource.name));
  assert.deepEqual(firstThree.sort(), namesOf(old), 'spooled files are sent before new events');
  assert.equal(second.diagnostics.counters.eventsSent, 30);
  assert.deepEqual(readdirSync(spoolDir), [], 'delivered files are removed');
  await b.shutdown(1000);
  assert.deepEqual(second.lines, []);
});

test('retries exhausted with a spool: events spooled at once instead of dropped', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const intake = await startIntake({ respond: () => ({ status: 503 }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { spoolDir, retry: { deadlineMs: 150 } }), diagnostics);
  assert.equal(await d.send(jobEvents('sp', 4)), false);
  assert.equal(diagnostics.counters.spooled, 4);
  assert.equal(diagnostics.totalDropped(), 0);
  assert.equal(spoolFiles(spoolDir).length, 1);
  await d.shutdown(500);
  assert.equal(spoolFiles(spoolDir).length, 1, 'this process does not re-read its own spool');
});

test('a corrupted file and a foreign file are moved aside with one warning; the rest is delivered', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const good = jobEvents('good', 3);
  new Spool(spoolDir, noWarnings).write(good);
  writeFileSync(join(spoolDir, 'spool-0000000000001-1-abc.json'), '{"format":"datadog-ci-pipeline-exporter/spool","version":1,"ev');
  writeFileSync(join(spoolDir, 'spool-0000000000002-1-abd.json'), JSON.stringify({ format: SPOOL_FORMAT, version: 99, events: [] }));
  writeFileSync(join(spoolDir, 'notes.txt'), 'not ours');
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { spoolDir }), diagnostics);
  await d.flush(3_000);
  assert.deepEqual(acceptedNames(intake), namesOf(good));
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /moved .* to .*corrupt/);
  const aside = readdirSync(join(spoolDir, 'corrupt')).sort();
  assert.equal(aside.length, 3);
  assert.ok(aside.some((n) => n.startsWith('notes.txt.')));
  assert.ok(aside.some((n) => n.startsWith('spool-0000000000001-1-abc.json.')));
  assert.ok(aside.some((n) => n.startsWith('spool-0000000000002-1-abd.json.')));
  assert.deepEqual(spoolFiles(spoolDir), []);
  await d.shutdown(1000);
});

test('spooled events past the age limit are dropped as too_old, not sent', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const stale = jobEvents('stale', 2, { agoMs: 19 * 3_600_000 });
  const ok = jobEvents('ok', 2);
  new Spool(spoolDir, noWarnings).write([...stale, ...ok]);
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { spoolDir }), diagnostics);
  await d.flush(3_000);
  assert.deepEqual(acceptedNames(intake), namesOf(ok));
  assert.equal(intake.invalid.length, 0);
  assert.equal(diagnostics.counters.dropped.too_old, 2);
  assert.deepEqual(readdirSync(spoolDir), []);
  await d.shutdown(1000);
});

test('two deliveries sharing a spool never send one file twice', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const spool = new Spool(spoolDir, noWarnings);
  const all: ReadyEvent[] = [];
  for (let i = 0; i < 40; i++) {
    const ev = jobEvents(`f${i}`, 3);
    all.push(...ev);
    spool.write(ev);
  }
  const intake = await startIntake({ respond: () => ({ delayMs: 2 }) });
  t.after(() => intake.close());
  const da = recordingDiagnostics();
  const db = recordingDiagnostics();
  const a = createDelivery(fastConfig(intake.endpoint, { spoolDir, userAgent: 'A' }), da.diagnostics);
  const b = createDelivery(fastConfig(intake.endpoint, { spoolDir, userAgent: 'B' }), db.diagnostics);
  await Promise.all([a.flush(5_000), b.flush(5_000)]);
  assert.deepEqual(acceptedNames(intake), namesOf(all), 'each event exactly once');
  const agents = new Set(intake.requests.map((r) => r.headers['user-agent']));
  assert.deepEqual(agents, new Set(['A', 'B']), 'both deliveries took part');
  assert.equal(da.diagnostics.counters.eventsSent + db.diagnostics.counters.eventsSent, 120);
  assert.deepEqual(readdirSync(spoolDir), []);
  await Promise.all([a.shutdown(1000), b.shutdown(1000)]);
});

test('a file claimed by a process that died is sent; a live claim is left alone', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const spool = new Spool(spoolDir, noWarnings);
  const orphan = jobEvents('orphan', 2);
  const held = jobEvents('held', 2);
  const n1 = spool.write(orphan);
  const n2 = spool.write(held);
  let deadPid = 999_999;
  while (isAlive(deadPid)) deadPid--;
  renameSync(join(spoolDir, n1), join(spoolDir, `${n1}.claimed-${deadPid}-aa`));
  // Our parent process is alive and not us: its claim stands.
  const liveClaim = `${n2}.claimed-${process.ppid}-bb`;
  renameSync(join(spoolDir, n2), join(spoolDir, liveClaim));
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { spoolDir }), diagnostics);
  await d.flush(3_000);
  assert.deepEqual(acceptedNames(intake), namesOf(orphan));
  assert.deepEqual(readdirSync(spoolDir), [liveClaim]);
  await d.shutdown(1000);
});

test('undelivered events of a claimed file are spooled again at shutdown, and the claim removed', { timeout: 15_000 }, async (t) => {
  const spoolDir = tempDir();
  const events = jobEvents('again', 3);
  new Spool(spoolDir, noWarnings).write(events);
  const intake = await startIntake({ respond: () => ({ hang: true }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { spoolDir }), diagnostics);
  await d.flush(200);
  assert.equal(intake.requests.length, 1);
  await d.shutdown(300);
  assert.equal(diagnostics.counters.spooled, 3);
  const files = readdirSync(spoolDir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^spool-.*\.json$/);
  const back = JSON.parse(readFileSync(join(spoolDir, files[0]!), 'utf8')) as { format: string; version: number; events: Array<{ json: string }> };
  assert.equal(back.format, SPOOL_FORMAT);
  assert.equal(back.version, SPOOL_VERSION);
  assert.deepEqual(
    back.events.map((e) => e.json),
    events.map((e) => e.json),
  );
});

test('a spool directory that cannot be written: events counted as dropped, shutdown still returns', { timeout: 15_000 }, async () => {
  const base = tempDir();
  const spoolDir = join(base, 'file-not-dir');
  writeFileSync(spoolDir, 'x');
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(await deadEndpoint(), { spoolDir }), diagnostics);
  void d.send(jobEvents('nowhere', 2));
  await d.shutdown(300);
  assert.equal(diagnostics.counters.spooled, 0);
  assert.equal(diagnostics.totalDropped(), 2);
  assert.ok(lines.some((l) => /cannot write/.test(l)), lines.join('\n'));
  assert.ok(!existsSync(join(base, 'corrupt')));
});


test('two processes sharing a spool never send one file twice', { timeout: 30_000 }, async (t) => {
  const spoolDir = tempDir();
  const spool = new Spool(spoolDir, noWarnings);
  const all: ReadyEvent[] = [];
  for (let i = 0; i < 60; i++) {
    const ev = jobEvents(`p${i}`, 2);
    all.push(...ev);
    spool.write(ev);
  }
  const intake = await startIntake({ respond: () => ({ delayMs: 2 }) });
  t.after(() => intake.close());
  // Each child is a separate Node process with its own delivery on the same directory.
  const script = `
    import { createDelivery } from './src/delivery/index.js';
    import { fastConfig, recordingDiagnostics } from './testkit/fault-helpers.js';
    const { diagnostics } = recordingDiagnostics();
    const d = createDelivery(fastConfig(process.env.ENDPOINT, { spoolDir: process.env.SPOOL, userAgent: process.env.NAME }), diagnostics);
    await d.flush(10_000);
    await d.shutdown(1_000);
  `;
  const run = (name: string) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: new URL('..', import.meta.url).pathname,
        env: { ...process.env, ENDPOINT: intake.endpoint, SPOOL: spoolDir, NAME: name },
        stdio: 'ignore',
      });
      child.on('exit', resolve);
    });
  assert.deepEqual(await Promise.all([run('proc-A'), run('proc-B')]), [0, 0]);
  assert.deepEqual(acceptedNames(intake), namesOf(all), 'each event exactly once');
  assert.deepEqual(spoolFiles(spoolDir), []);
});
