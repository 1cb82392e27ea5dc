// `datadog-ci-pipeline-exporter intake`: not built yet (see the issues).
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('datadog-ci-pipeline-exporter intake: not available in this version\n');
  return 2;
}
