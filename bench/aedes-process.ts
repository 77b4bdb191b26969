/**
 * Bare Aedes 1.2 (no persistence, no hooks) in its own process, for scenarios that measure a broker process from
 * outside (memory per connection, CPU): `node dist/bench/aedes-process.js PORT`. Prints `listening` once it does.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
const server = createServer((socket) => broker.handle(socket));
server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => broker.close(() => server.close(() => process.exit(0))));
