// `npm start`: runs the demo. PORT / HOST pick the address, REDIS_URL makes it
// one of many instances, DEMO_ENCRYPTION=1 requires encrypted connections.

import { readDemoConfig } from './config.ts';
import { DemoApplication } from './demo-application.ts';

let config: ReturnType<typeof readDemoConfig>;
let url: string;
try {
  config = readDemoConfig();
  ({ url } = await new DemoApplication(config).start());
} catch (error) {
  console.error(`roomcast demo could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const mode = config.redisUrl
  ? `one of many instances sharing Redis at ${config.redisUrl.host}`
  : 'single instance (no REDIS_URL)';
console.log(
  `\nroomcast demo: open ${url}\n  mode: ${mode}\n  encryption: ${config.encryption ? 'required' : 'off'}\n`,
);
