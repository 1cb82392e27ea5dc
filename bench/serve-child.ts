// serve's figure in a bench process of its own (bench/run.ts spawns it; it prints its result on
// a line of its own). The load generator — the OTLP/protobuf exporter feeding serve, and the
// in-process exporter it is compared with — then starts from a fresh heap and fresh JIT state,
// as the fresh-process figures do, rather than from what the throughput and scale runs left in
// the main bench process (a full run read ~20 % lower there than `--serve-only` did).
//   npx tsx bench/serve-child.ts [--quick] [--rounds 3]
import { loadExporter } from './exporter.js';
import { serveBench } from './serve.js';
import { startSink } from './sink.js';

const argv = process.argv.slice(2);
const rounds = argv.includes('--rounds') ? Number(argv[argv.indexOf('--rounds') + 1]) : 3;
const sink = await startSink();
try {
  const result = await serveBench(loadExporter(), sink, { quick: argv.includes('--quick'), rounds, log: console.log });
  // The line bench/run.ts looks for.
  console.log(`@serve-result ${JSON.stringify(result)}`);
} finally {
  sink.close();
}
