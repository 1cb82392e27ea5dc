// `datadog-ci-pipeline-exporter intake [--host 127.0.0.1] [--port 8126]`: the local stand-in for
// Datadog's pipeline endpoint (src/intake/). It validates what it receives like Datadog and draws
// it on a page at /. Runs until SIGINT or SIGTERM.
import { parseArgs } from 'node:util';
import { quote } from '../diagnostics.js';
import { DEFAULT_INTAKE_PORT, DEFAULT_STORE_LIMITS, INTAKE_PATH, formatProblem, startIntakeServer, type ReceivedRequest } from '../intake/index.js';

/** One line per request on stdout, so the terminal shows what arrived; the first problems of a 400 follow it. */
function logRequest(r: ReceivedRequest, status: number): void {
  const n = r.events.length;
  const lines = [`${new Date().toISOString()} ${status} ${status < 300 ? 'accepted' : 'answered'} ${n} event(s), ${r.bodyBytes} bytes`];
  for (const p of r.problems.slice(0, 5)) lines.push(`  ${formatProblem(p, r.events)}`);
  if (r.problems.length > 5) lines.push(`  … ${r.problems.length - 5} more problem(s): see the page`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const HELP = `usage: datadog-ci-pipeline-exporter intake [--host 127.0.0.1] [--port ${DEFAULT_INTAKE_PORT}]

A local stand-in for Datadog's CI pipeline endpoint: POST ${INTAKE_PATH} validates each body
against the official schema and the spec's prose rules and answers 202, or 400 with errors that
name the event and the field. Open the printed address in a browser for a waterfall of the
pipelines received (kept in memory: the last ${DEFAULT_STORE_LIMITS.maxPipelines} pipelines).

Point the exporter at it: DD_CI_PIPELINE_ENDPOINT=http://HOST:PORT${INTAKE_PATH}
(or --endpoint with run/serve). No API key is needed or checked.

  --host <address>         address to bind (default 127.0.0.1; the intake has no authentication)
  --port <n>               port (default ${DEFAULT_INTAKE_PORT}; 0 picks a free one)
  --max-pipelines <n>      pipelines kept for the page (default ${DEFAULT_STORE_LIMITS.maxPipelines})
  --quiet                  no line per request on stdout
  --help                   print this help`;

export async function main(argv: string[]): Promise<number> {
  let values: { host?: string; port?: string; 'max-pipelines'?: string; quiet?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { host: { type: 'string' }, port: { type: 'string' }, 'max-pipelines': { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`datadog-ci-pipeline-exporter intake: ${err instanceof Error ? err.message : String(err)}\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const host = values.host ?? '127.0.0.1';
  const port = values.port === undefined ? DEFAULT_INTAKE_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`datadog-ci-pipeline-exporter intake: --port must be an integer from 0 to 65535, got ${quote(values.port)}\n`);
    return 2;
  }
  const maxPipelines = values['max-pipelines'] === undefined ? DEFAULT_STORE_LIMITS.maxPipelines : Number(values['max-pipelines']);
  if (!Number.isInteger(maxPipelines) || maxPipelines < 1) {
    process.stderr.write(`datadog-ci-pipeline-exporter intake: --max-pipelines must be a positive integer, got ${quote(values['max-pipelines'])}\n`);
    return 2;
  }
  let intake;
  try {
    intake = await startIntakeServer({ host, port, limits: { maxPipelines }, hooks: values.quiet ? {} : { answered: logRequest } });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? `port ${port} is in use (try --port 0, or another port)` : e.message;
    process.stderr.write(`datadog-ci-pipeline-exporter intake: cannot listen on ${quote(host)} port ${port}: ${why}\n`);
    return 1;
  }
  if (host !== '127.0.0.1' && host !== '::1' && host !== 'localhost') {
    process.stderr.write(`datadog-ci-pipeline-exporter intake: warning: listening on ${quote(host)}: anyone who can reach it can read the pipelines it received\n`);
  }
  process.stdout.write(`listening on ${intake.url}\n`);
  process.stdout.write(`endpoint ${intake.endpoint} · pipeline page ${intake.url}/\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await intake.close();
  return 0;
}
