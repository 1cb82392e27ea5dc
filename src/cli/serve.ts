// `datadog-ci-pipeline-exporter serve`: not built yet (see the issues).
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('datadog-ci-pipeline-exporter serve: not available in this version\n');
  return 2;
}
