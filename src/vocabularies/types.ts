// The shapes every vocabulary module shares. A vocabulary is pure: it reads what a span carries
// (name, kind, attributes, resource attributes, links), what its ancestors passed down (the
// Lineage, including `vocab`), and, when the span is resolved, its children that have arrived;
// it answers with a Decision: the level (or none: the span passes lineage through), the
// contract's `ci.<path>` keys, and the context its descendants inherit.
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import type { Level } from '../mapping/fields.js';
import type { Lineage, SpanData } from '../mapping/transform.js';

/** SpanData plus what vocabularies read beyond it (real SDK spans have both). */
export interface VocabSpan extends SpanData {
  kind?: number;
  links?: ReadonlyArray<{ context: { traceId: string; spanId: string }; attributes?: Attributes }>;
}

/** What a vocabulary passes down to descendants (carried in Lineage.vocab). */
export interface VocabContext {
  /** The vocabulary of the nearest ancestor that set a context. */
  vocabulary: string;
  /** The pipeline run's URL (Jenkins job URLs are built on it; GitHub Actions' job URL fallback). */
  runUrl?: string;
  /** Tags every event below carries (Jenkins: the parallel branch). */
  tags?: readonly string[];
  /** Node labels of an enclosing agent block (Jenkins). */
  labels?: readonly string[];
  /** Queue time waiting for the span with this ID (Jenkins: Agent Allocation → what the agent runs first). */
  queue?: { spanId: string; ms: number };
}

/** The contract's keys (`ci.<API field path>`), as a span would carry them. */
export type CiValues = Record<string, AttributeValue>;

export interface Decision {
  /** The event's level; undefined: no event, the span passes its lineage through. */
  level?: Level;
  /** `ci.<path>` values; layered below the span's own `ci.*` keys. */
  values?: CiValues;
  /** What descendants inherit; undefined: unchanged. */
  context?: VocabContext;
}

/** Children of the span that have arrived by the time it is resolved (none when it resolved on arrival before them). */
export type Children = () => readonly VocabSpan[];

export interface Vocabulary {
  readonly name: VocabularyName;
  /** Cheap test on the span's own keys (and its resource's): may this span be an event of this vocabulary? */
  recognise(span: VocabSpan): boolean;
  /** Pure: the span, its lineage, its children → the contract's values. */
  decide(span: VocabSpan, lineage: Lineage, children: Children): Decision;
}

export const VOCABULARY_NAMES = ['github-receiver', 'gitlab-receiver', 'jenkins', 'github-actions', 'cicd', 'datadog'] as const;
export type VocabularyName = (typeof VOCABULARY_NAMES)[number];

export type { HrTime };
