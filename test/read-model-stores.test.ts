import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { createMemoryAccountingStore } from '../processors/accounting/memory-store.js';
import { createSqliteAccountingStore } from '../processors/accounting/store.js';
import { createMemoryDeviceStateStore } from '../processors/device-state/memory-store.js';
import { createSqliteDeviceStateStore } from '../processors/device-state/store.js';
import { createMemoryRunnerStorage } from '../processors/runner/memory-storage.js';
import { openSqliteRunnerStorage } from '../processors/runner/sqlite-storage.js';
import { createMemorySeriesStore } from '../processors/telemetry-series/memory-store.js';
import { createSqliteSeriesStore } from '../processors/telemetry-series/store.js';
import { accountingStoreContract } from './contracts/accounting-store.contract.js';
import { deviceStateStoreContract } from './contracts/device-state-store.contract.js';
import { runnerStorageContract, runnerStorageRollbackContract } from './contracts/runner-storage.contract.js';
import { seriesStoreContract } from './contracts/series-store.contract.js';

/** A fresh readmodels.db in a temp directory, as the runner opens it. */
const sqlite = () => openSqliteRunnerStorage(mkdtempSync(path.join(tmpdir(), 'fleetlog-stores-')));
const db = () => sqlite().db as Database.Database;

runnerStorageContract('sqlite', sqlite);
runnerStorageContract('memory', createMemoryRunnerStorage);
runnerStorageRollbackContract('sqlite', sqlite);
deviceStateStoreContract('sqlite', () => createSqliteDeviceStateStore(db()));
deviceStateStoreContract('memory', createMemoryDeviceStateStore);
seriesStoreContract('sqlite', () => createSqliteSeriesStore(db()));
seriesStoreContract('memory', createMemorySeriesStore);
accountingStoreContract('sqlite', () => createSqliteAccountingStore(db()));
accountingStoreContract('memory', createMemoryAccountingStore);
