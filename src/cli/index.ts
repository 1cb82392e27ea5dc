// The package's bin: `datadog-ci-pipeline-exporter <subcommand> [flags]`. One module per
// subcommand, loaded only when asked for, so `run` around a build does not pay for `serve`.
import { VERSION } from '../version.js';

type Main = (argv: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, { summary: string; load: () => Promise<Main> }> = {
  run: { summary: 'run a command inside a CI span and send it (run --help)', load: async () => (await import('./run.js')).main },
  serve: { summary: 'receive OTLP/HTTP traces and send their CI spans (serve --help)', load: async () => (await import('./serve.js')).main },
  intake: { summary: 'a local stand-in for the Datadog endpoint, with a pipeline page (intake --help)', load: async () => (await import('./intake.js')).main },
};

export function usage(): string {
  const lines = [`usage: datadog-ci-pipeline-exporter <command> [flags]`, ``, `commands:`];
  for (const [name, { summary }] of Object.entries(SUBCOMMANDS)) lines.push(`  ${name.padEnd(8)} ${summary}`);
  lines.push(``, `  --version  print the version`, `  --help     print this help`);
  return lines.join('\n');
}

export async function cli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${usage()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const sub = Object.hasOwn(SUBCOMMANDS, command) ? SUBCOMMANDS[command] : undefined;
  if (!sub) {
    process.stderr.write(`datadog-ci-pipeline-exporter: unknown command ${JSON.stringify(command).slice(0, 80)}\n${usage()}\n`);
    return 2;
  }
  return (await sub.load())(rest);
}
