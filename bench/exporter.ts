// How the bench builds this exporter: pointed at the sink, with the defaults a user gets, and
// its messages collected instead of printed so that they cannot slow the run or hide the table.
import { DatadogCIPipelineExporter, type DatadogCIPipelineExporterOptions } from '../src/index.js';

export type BenchExporter = DatadogCIPipelineExporter;
export type ExporterFactory = (endpoint: string, extra?: DatadogCIPipelineExporterOptions) => BenchExporter;

/** Messages the exporters printed during the bench (a well-formed workload should cause none). */
export const exporterMessages: string[] = [];

export function loadExporter(): ExporterFactory {
  return (endpoint, extra = {}) =>
    new DatadogCIPipelineExporter({
      endpoint,
      apiKey: 'bench-key',
      service: 'monorepo-build',
      logger: (line) => {
        if (exporterMessages.length < 50) exporterMessages.push(line);
      },
      ...extra,
    });
}
