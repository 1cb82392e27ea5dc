export { DatadogCIPipelineExporter } from './exporter.js';
export type { DatadogCIPipelineExporterOptions } from './options.js';
export { DatadogCIPipelineSpanProcessor, type DatadogCIPipelineSpanProcessorOptions } from './processor.js';
export { envForChildProcess, parentFromEnv, type ParentFromEnv } from './propagation.js';
export type { Counters, DropReason, Logger } from './diagnostics.js';
export { DATADOG_SITES, type DatadogSite } from './sites.js';
export type { Level } from './mapping/fields.js';
export { VERSION } from './version.js';
export type { VocabulariesOption, VocabularyName } from './vocabularies/index.js';
