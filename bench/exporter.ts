// How the bench builds this exporter: pointed at the sink, with the defaults a user gets, and
// its messages collected instead of printed so that they cannot slow the run or hide the table.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { DatadogCIPipelineExporter, type DatadogCIPipelineExporterOptions } from '../src/index.js';

export type BenchExporter = DatadogCIPipelineExporter;
export type ExporterFactory = (endpoint: string, extra?: DatadogCIPipelineExporterOptions) => BenchExporter;

/** Messages the exporters printed during the bench (a well-formed workload should cause none). */
export const exporterMessages: string[] = [];

export function loadExporter(Exporter: typeof DatadogCIPipelineExporter = DatadogCIPipelineExporter): ExporterFactory {
  return (endpoint, extra = {}) =>
    new Exporter({
      endpoint,
      apiKey: 'bench-key',
      service: 'monorepo-build',
      logger: (line) => {
        if (exporterMessages.length < 50) exporterMessages.push(line);
      },
      ...extra,
    });
}

/** The exporter of another copy of src/ (`--ab DIR`), to compare two versions in one run. */
export async function loadExporterFrom(srcDir: string): Promise<ExporterFactory> {
  const mod = (await import(pathToFileURL(resolve(srcDir, 'index.ts')).href)) as { DatadogCIPipelineExporter: typeof DatadogCIPipelineExporter };
  return loadExporter(mod.DatadogCIPipelineExporter);
}
