// The registry: the vocabularies in the order they are tried (the first whose recogniser
// matches decides; producers that share keys are ordered most specific first: the receivers'
// resources and Jenkins' and GitHub's own keys before plain semconv), the `vocabularies`
// option, and what applies to every vocabulary alike: the queue time an ancestor left for a
// span, tags an ancestor gives everything below it, and Datadog's tag names as a fallback.
// Adding a vocabulary = one module in this folder + its entry in VOCABULARIES + its fixtures.
import { EMPTY_LINEAGE, type Lineage } from '../mapping/transform.js';
import { hrMs } from './common.js';
import { cicd } from './cicd.js';
import { githubActions } from './github-actions.js';
import { githubReceiver } from './github-receiver.js';
import { gitlabReceiver } from './gitlab-receiver.js';
import { jenkins } from './jenkins.js';
import { VOCABULARY_NAMES, type Children, type CiValues, type Decision, type VocabContext, type VocabSpan, type Vocabulary, type VocabularyName } from './types.js';

export type { Children, CiValues, Decision, VocabContext, VocabSpan, Vocabulary, VocabularyName } from './types.js';
export { VOCABULARY_NAMES } from './types.js';
export { datadogFallback } from './datadog.js';

/** In the order they are tried. */
export const VOCABULARIES: readonly Vocabulary[] = [githubReceiver, gitlabReceiver, jenkins, githubActions, cicd];

/** The `vocabularies` option: true/undefined = all, false = none, a list = those. */
export type VocabulariesOption = boolean | readonly VocabularyName[];

/** The option's names, or a problem message for the configuration error line. */
export function resolveVocabularies(option: unknown): { names: readonly VocabularyName[] } | { problem: string } {
  if (option === undefined || option === true) return { names: VOCABULARY_NAMES };
  if (option === false) return { names: [] };
  if (Array.isArray(option)) {
    const unknown = option.filter((n) => !(VOCABULARY_NAMES as readonly unknown[]).includes(n));
    if (unknown.length === 0) return { names: [...new Set(option as VocabularyName[])] };
    return { problem: `option vocabularies names unknown vocabularies ${JSON.stringify(unknown).slice(0, 200)}; use true (all), false (none) or a list of ${VOCABULARY_NAMES.join(', ')}` };
  }
  return { problem: `option vocabularies must be true (all), false (none) or a list of ${VOCABULARY_NAMES.join(', ')}, got ${JSON.stringify(option)?.slice(0, 100)}` };
}

const NO_CHILDREN: Children = () => [];

export class VocabularyRegistry {
  private readonly list: readonly Vocabulary[];
  /** Whether Datadog's tag names are read as a fallback. */
  readonly datadog: boolean;

  constructor(names: readonly VocabularyName[]) {
    this.list = VOCABULARIES.filter((v) => names.includes(v.name));
    this.datadog = names.includes('datadog');
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** At arrival, for a span without `ci.level`: may it become an event (decided at resolve time)? */
  recognise(span: VocabSpan): boolean {
    for (const v of this.list) if (v.recognise(span)) return true;
    return false;
  }

  /**
   * At resolve time (the lineage is known, the children that arrived are there): the level,
   * the contract's values, and the context for descendants (undefined: the lineage's own).
   */
  resolve(span: VocabSpan, lineage: Lineage, children: Children = NO_CHILDREN): Decision {
    let d: Decision = {};
    for (const v of this.list) {
      if (!v.recognise(span)) continue;
      d = v.decide(span, lineage, children);
      break;
    }
    const inherited = lineage.vocab;
    const queue = inherited?.queue;
    const targeted = queue !== undefined && queue.spanId === span.spanContext().spanId;
    let context = d.context;
    if (!d.level) {
      if (targeted) {
        // Not an event: the queue time goes on to what this span runs first.
        let first: VocabSpan | undefined;
        for (const c of children()) if (!first || hrMs(c.startTime) < hrMs(first.startTime)) first = c;
        const base: VocabContext = { ...(context ?? inherited!) };
        if (first) base.queue = { spanId: first.spanContext().spanId, ms: queue.ms };
        else delete base.queue;
        context = base;
      }
      return context ? { context } : {};
    }
    // Datadog's tag names are layered below these by the exporter (only on spans that carry them).
    const values: CiValues = d.values ?? {};
    if (inherited?.tags) {
      const own = values['ci.tags'];
      // readCiAttributes copies the list: the context's own array can be handed over as it is.
      values['ci.tags'] = Array.isArray(own) ? [...(own as string[]), ...inherited.tags] : (inherited.tags as string[]);
    }
    if (targeted) {
      if (values['ci.queue_time'] === undefined && d.level !== 'step') values['ci.queue_time'] = queue.ms;
      const base: VocabContext = { ...(context ?? inherited!) };
      delete base.queue;
      context = base;
    }
    return context ? { level: d.level, values, context } : { level: d.level, values };
  }

  /** A held span that leaves unresolved: would it have been an event? (Decided without ancestors.) */
  levelIfEvicted(span: VocabSpan): Decision['level'] {
    return this.resolve(span, EMPTY_LINEAGE).level;
  }
}
