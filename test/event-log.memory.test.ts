import { createMemoryEventLog } from '../eventlog/memory-event-log.js';
import { eventLogContract } from './contracts/event-log.contract.js';

eventLogContract({ name: 'memory', open: () => Promise.resolve(createMemoryEventLog()) });
