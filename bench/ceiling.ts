// What the throughput targets leave to building events: the exporter with parts of its work made
// free, end to end, beside the OTLP exporter and the floor. Copies of src/ are made under
// .bench-out/ceiling/, each with one change to src/events.ts, and `bench/run.ts --ab` runs each:
//
//   skeleton           an event built once is remembered by its span (the span's attributes
//                      object, which a held record shares) and handed out again: mapping,
//                      validation and serialization cost a WeakMap lookup. Filing, the span-shape
//                      check, the store, the pump, delivery, undici and the wait for each answer
//                      stay. The ceiling of any way of building events with this skeleton.
//   serialization-only  the mapped and validated event (its own fields, shared fields and
//                      envelope) is remembered the same way and serialized anew by buildEvent each
//                      time: building costs what serialization costs as it is.
//   no-serialization  mapping and validation run; the event's JSON is remembered the same way.
//                      Its text is flattened by its first write into a body, so later writes copy
//                      a flat string: more than any serializer could save.
//
//   npx tsx bench/ceiling.ts [--rounds 7] [--only skeleton|serialization-only|no-serialization]
//
// Every timed run of the bench's rounds after the first sees spans whose events are remembered
// (the warm-up's spans are others), so the medians are the remembered case. These copies are
// measuring instruments, not candidates: the remembered events never change with the span.
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const BUILD_ONE = '  private buildOne(span: SpanData, level: Level, inherited: Lineage, now: number, out: ReadyEvent[], vocabValues?: Attributes): Lineage {\n';
const PUSH = '    out.push(buildEvent(mapped.resource, mapped.shared, mapped.envelope, this.keyNeedle, mapped.timeMs, what));\n';
const CLASS = 'export class EventBuilder {';

/** Each variant: the replacements made in src/events.ts (each anchor must occur exactly once). */
const VARIANTS: Record<string, Array<[string, string]>> = {
  skeleton: [
    [CLASS, `const REMEMBERED = new WeakMap<object, { ev: ReadyEvent; lineage: Lineage }>();\n${CLASS}`],
    [
      BUILD_ONE,
      `${BUILD_ONE}    const hit = REMEMBERED.get(span.attributes);
    if (hit !== undefined) {
      out.push({ json: hit.ev.json, bytes: hit.ev.bytes, timeMs: hit.ev.timeMs, describe: hit.ev.describe });
      this.diagnostics.counters.eventsReady++;
      return hit.lineage;
    }
    const n = out.length;
    const lineage = this.buildOneAnew(span, level, inherited, now, out, vocabValues);
    const e = out[n];
    if (e !== undefined) REMEMBERED.set(span.attributes, { ev: { json: e.json, bytes: e.bytes, timeMs: e.timeMs, describe: e.describe }, lineage });
    return lineage;
  }

  private buildOneAnew(span: SpanData, level: Level, inherited: Lineage, now: number, out: ReadyEvent[], vocabValues?: Attributes): Lineage {
`,
    ],
  ],
  'serialization-only': [
    [CLASS, `const REMEMBERED = new WeakMap<object, { mapped: ReturnType<typeof mapSpanParts>; what: () => string }>();\n${CLASS}`],
    [
      BUILD_ONE,
      `${BUILD_ONE}    const hit = REMEMBERED.get(span.attributes);
    if (hit !== undefined) {
      const m = hit.mapped;
      out.push(buildEvent(m.resource, m.shared, m.envelope, this.keyNeedle, m.timeMs, hit.what));
      this.diagnostics.counters.eventsReady++;
      return m.lineage;
    }
`,
    ],
    [PUSH, `    REMEMBERED.set(span.attributes, { mapped, what });\n${PUSH}`],
  ],
  'no-serialization': [
    [CLASS, `const REMEMBERED = new WeakMap<object, ReadyEvent>();\n${CLASS}`],
    [
      PUSH,
      `    const hit = REMEMBERED.get(span.attributes);
    if (hit !== undefined) out.push({ json: hit.json, bytes: hit.bytes, timeMs: mapped.timeMs, describe: what });
    else {
      const e = buildEvent(mapped.resource, mapped.shared, mapped.envelope, this.keyNeedle, mapped.timeMs, what);
      REMEMBERED.set(span.attributes, { json: e.json, bytes: e.bytes, timeMs: e.timeMs, describe: e.describe });
      out.push(e);
    }
`,
    ],
  ],
};

/** A copy of src/ with the variant's replacements; throws when an anchor is not found once (src/ moved on). */
function makeVariant(name: string): string {
  const edits = VARIANTS[name];
  if (!edits) throw new Error(`unknown variant ${name} (${Object.keys(VARIANTS).join(', ')})`);
  const dir = resolve(root, '.bench-out/ceiling', name, 'src');
  rmSync(dir, { recursive: true, force: true });
  cpSync(resolve(root, 'src'), dir, { recursive: true });
  const file = resolve(dir, 'events.ts');
  let text = readFileSync(file, 'utf8');
  for (const [anchor, replacement] of edits) {
    const count = text.split(anchor).length - 1;
    if (count !== 1) throw new Error(`ceiling: ${name}: the anchor ${JSON.stringify(anchor.trim().slice(0, 60))} occurs ${count} times in src/events.ts, not once; update bench/ceiling.ts`);
    text = text.replace(anchor, () => replacement);
  }
  writeFileSync(file, text);
  return dir;
}

function main(): void {
  const argv = process.argv.slice(2);
  const value = (flag: string): string | undefined => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const names = value('--only')?.split(',') ?? Object.keys(VARIANTS);
  const rounds = value('--rounds');
  for (const name of names) {
    const dir = makeVariant(name);
    console.log(`\n=== ${name} (${dir}), ${new Date().toISOString()}`);
    const args = ['tsx', 'bench/run.ts', '--only', 'exporter,otlp,floor', '--ab', dir, '--no-scale', '--no-serve', '--no-process', ...(rounds ? ['--rounds', rounds] : [])];
    const r = spawnSync('npx', args, { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) process.exitCode = 1;
  }
}

main();
