/**
 * Driver calls the API makes on behalf of a request — check, discover, preview — as tasks
 * that run in a worker thread (driver-tasks.ts), never on the API's event loop.
 *
 * `runDriverTask` is the one place such a call reaches a driver: whatever a driver's
 * check/discover/read need (a config today, a context later) is passed here.
 */
import { getDriver, getSourceDriver } from '../drivers/index.js';
import type { Catalog, CheckResult, ConfiguredStream } from '../drivers/types.js';
import type { MappingSpec } from '../mapping/mapping.js';
import { previewSource, type PreviewRecord } from '../preview.js';
import { driverContext } from '../drivers/context.js';
import type { FileScope } from '../../security/file-roots.js';

export type DriverTask =
  | { kind: 'check'; driver: string; config: unknown; files: FileScope }
  | { kind: 'discover'; driver: string; config: unknown; files: FileScope }
  | {
      kind: 'preview';
      driver: string;
      config: unknown;
      files: FileScope;
      /** The streams to read; null: the first stream the source discovers (none: no records). */
      streams: ConfiguredStream[] | null;
      mapping: MappingSpec | null;
      limit: number;
    };

export interface DriverTaskResults {
  check: CheckResult;
  discover: Catalog;
  preview: PreviewRecord[];
}

export type DriverTaskResult<K extends DriverTask['kind']> = DriverTaskResults[K];

/** API → worker: one task and the secret values its config carries (kept out of every message back). */
export interface DriverTaskRequest {
  task: DriverTask;
  secrets: string[];
}

/** Worker → API. `result` is the answer as JSON (its size is what the OUTPUT limit measures). */
export type DriverTaskMessage =
  | { type: 'ready' }
  | { type: 'result'; json: string }
  | { type: 'failed'; error: string }
  | { type: 'too-large'; bytes: number };

/** Runs one task against its driver (inside the worker). Throws what the driver throws. */
export async function runDriverTask(task: DriverTask): Promise<DriverTaskResults[DriverTask['kind']]> {
  const ctx = driverContext(task.files);
  switch (task.kind) {
    case 'check': {
      const driver = getDriver(task.driver);
      if (!driver) throw new Error(`unknown driver "${task.driver}"`);
      return driver.check(task.config as never, ctx);
    }
    case 'discover': {
      const driver = getDriver(task.driver);
      if (!driver) throw new Error(`unknown driver "${task.driver}"`);
      return driver.discover(task.config as never, ctx);
    }
    case 'preview': {
      const driver = getSourceDriver(task.driver);
      if (!driver) throw new Error(`unknown source driver "${task.driver}"`);
      let streams = task.streams;
      if (!streams) {
        const first = (await driver.discover(task.config as never, ctx)).streams[0]?.name;
        if (!first) return [];
        streams = [{ name: first, syncMode: 'FULL_REFRESH' }];
      }
      // The worker's time limit bounds the preview.
      return previewSource({ driver: task.driver, config: task.config, streams, mapping: task.mapping, limit: task.limit, ctx });
    }
  }
}
