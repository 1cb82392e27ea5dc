// Node 20 (this machine's), @opentelemetry/api 1.9, SDK 2.x (sdk-trace-base, sdk-node 0.2xx).
import { legSuite } from './legs.js';

legSuite('node20-sdk2');
