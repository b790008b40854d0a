/**
 * Mappings: versioned record reshaping specs. Every change of the spec bumps `version` and
 * keeps the old one in MappingVersion, so a job can say exactly which spec it ran with.
 */
import { globalId } from '../../ids.js';
import type { PrismaClient } from '../../db/client.js';
import type { Prisma } from '../../generated/prisma/client.js';
import { compileMapping, MappingRecordError, validateMappingSpec, type MappingSpec } from '../../engine/mapping/mapping.js';
import { ConflictError, ConnectorFailedError, InUseError, NotFoundError, ResourceLimitError, ValidationError } from '../../errors.js';
import type { PreviewRecord } from '../../engine/preview.js';
import type { DriverTasks } from '../../engine/runner/driver-tasks.js';
import { requireName, type DriverConfigResolver } from '../connector/connector.service.js';
import type { EventService } from '../event/event.service.js';
import { requireWorkspaceId } from '../../tenancy/scope.js';

export interface MappingInput {
  name: string;
  description?: string | null;
  spec: unknown;
}

export interface MappingTestResult {
  input: unknown;
  output: Record<string, unknown> | null;
  error: { path: string | null; code: string; message: string } | null;
}

export const MAX_TEST_RECORDS = 1000;

export function parseSpec(input: unknown, prefix = 'spec'): MappingSpec {
  const r = validateMappingSpec(input);
  if (!r.ok) throw new ValidationError('invalid mapping', r.errors.map((e) => ({ path: e.path ? `${prefix}.${e.path}` : prefix, message: e.message })));
  return r.spec;
}

/** Applies a spec to sample records, one result per record, never throwing for a bad record. */
export function testSpec(spec: MappingSpec, records: unknown[]): MappingTestResult[] {
  if (records.length > MAX_TEST_RECORDS) {
    throw new ValidationError('too many records', [{ path: 'records', message: `at most ${MAX_TEST_RECORDS} records per test` }]);
  }
  const fn = compileMapping(spec);
  return records.map((input) => {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      return { input, output: null, error: { path: null, code: 'NOT_AN_OBJECT', message: 'a record must be a JSON object' } };
    }
    try {
      return { input, output: fn(input as Record<string, unknown>), error: null };
    } catch (err) {
      if (err instanceof MappingRecordError) return { input, output: null, error: { path: err.path, code: err.code, message: err.message } };
      return { input, output: null, error: { path: null, code: 'MAPPING_FAILED', message: (err as Error).message } };
    }
  });
}

export class MappingService {
  constructor(
    private readonly db: PrismaClient,
    private readonly events: EventService,
    /** Connector configs for drivers, secrets decrypted. */
    private readonly driverConfig: DriverConfigResolver,
    /** Where previews run: a worker thread with time and memory limits. */
    private readonly driverTasks: DriverTasks,
  ) {}

  async get(id: string) {
    const m = await this.db.mapping.findUnique({ where: { id } });
    if (!m) throw new NotFoundError('Mapping', id);
    return m;
  }

  async create(input: MappingInput) {
    const name = requireName(input.name);
    const spec = parseSpec(input.spec);
    return this.events.transaction(async (tx, emit) => {
      const m = await tx.mapping.create({
        data: {
          workspaceId: requireWorkspaceId(),
          name,
          description: input.description ?? null,
          spec: spec as unknown as Prisma.InputJsonValue,
          versions: { create: { version: 1, spec: spec as unknown as Prisma.InputJsonValue } },
        },
      });
      await emit({ type: 'MAPPING_CREATED', message: `mapping "${name}" created`, data: { mappingId: m.id, version: 1 } });
      return m;
    });
  }

  async update(input: { id: string; name?: string | null; description?: string | null; spec?: unknown; expectedVersion?: number | null }) {
    const current = await this.get(input.id);
    const name = input.name == null ? current.name : requireName(input.name);
    const spec = input.spec === undefined || input.spec === null ? null : parseSpec(input.spec);
    const specChanged = spec !== null && JSON.stringify(spec) !== JSON.stringify(current.spec);
    return this.events.transaction(async (tx, emit) => {
      const expected = input.expectedVersion ?? current.version;
      const res = await tx.mapping.updateMany({
        where: { id: current.id, version: expected },
        data: {
          name,
          description: input.description === undefined ? current.description : input.description,
          ...(specChanged ? { spec: spec as unknown as Prisma.InputJsonValue, version: { increment: 1 } } : {}),
        },
      });
      if (res.count === 0) {
        const now = await tx.mapping.findUnique({ where: { id: current.id } });
        if (!now) throw new NotFoundError('Mapping', current.id);
        throw new ConflictError(`mapping was changed concurrently (version ${now.version})`, now.version);
      }
      const m = await tx.mapping.findUniqueOrThrow({ where: { id: current.id } });
      if (specChanged) {
        await tx.mappingVersion.create({ data: { mappingId: m.id, version: m.version, spec: spec as unknown as Prisma.InputJsonValue } });
      }
      await emit({
        type: 'MAPPING_UPDATED',
        message: `mapping "${name}" updated${specChanged ? ` to version ${m.version}` : ''}`,
        data: { mappingId: m.id, version: m.version },
      });
      return m;
    });
  }

  async delete(id: string) {
    const m = await this.get(id);
    return this.events.transaction(async (tx, emit) => {
      const users = await tx.pipeline.findMany({ where: { mappingId: id }, select: { id: true, name: true } });
      if (users.length) {
        throw new InUseError(`mapping "${m.name}" is used by pipeline(s): ${users.map((u) => u.name).join(', ')}`, users.map((u) => globalId('Pipeline', u.id)));
      }
      await tx.mapping.delete({ where: { id } });
      await emit({ type: 'MAPPING_DELETED', message: `mapping "${m.name}" deleted`, data: { mappingId: id } });
      return m;
    });
  }

  /** Maps up to `limit` records pulled from a live source connector; writes nothing. */
  async preview(input: { connectorId: string; spec: MappingSpec; stream?: string | null; limit: number }): Promise<PreviewRecord[]> {
    const source = await this.db.connector.findUnique({ where: { id: input.connectorId } });
    if (!source) throw new NotFoundError('Connector', input.connectorId);
    if (source.role !== 'SOURCE') throw new ValidationError('not a source', [{ path: 'connectorId', message: `connector "${source.name}" is a ${source.role}` }]);
    let scrub = (text: string) => text;
    try {
      const dc = await this.driverConfig(source);
      scrub = dc.scrub;
      // Without a stream: the first one the source discovers (in the same worker).
      const streams = input.stream ? [{ name: input.stream, syncMode: 'FULL_REFRESH' as const }] : null;
      return await this.driverTasks.run({ kind: 'preview', driver: source.driver, config: dc.config, streams, mapping: input.spec, limit: input.limit, files: dc.files }, dc.secrets);
    } catch (err) {
      if (err instanceof ResourceLimitError) throw err;
      throw new ConnectorFailedError(`reading from "${source.name}" failed: ${scrub((err as Error).message)}`, source.id);
    }
  }

  /** The spec of a stored mapping at a version (default: current). */
  async specOf(id: string, version?: number | null): Promise<MappingSpec> {
    const m = await this.get(id);
    if (version == null || version === m.version) return parseSpec(m.spec);
    const v = await this.db.mappingVersion.findUnique({ where: { mappingId_version: { mappingId: id, version } } });
    if (!v) throw new NotFoundError('MappingVersion', `${id}@${version}`);
    return parseSpec(v.spec);
  }

  /** Tests a stored mapping (a given version, or the current one) against sample records. */
  async test(id: string, records: unknown[], version?: number | null): Promise<MappingTestResult[]> {
    const m = await this.get(id);
    let spec = m.spec;
    if (version != null && version !== m.version) {
      const v = await this.db.mappingVersion.findUnique({ where: { mappingId_version: { mappingId: id, version } } });
      if (!v) throw new NotFoundError('MappingVersion', `${id}@${version}`);
      spec = v.spec;
    }
    return testSpec(parseSpec(spec), records);
  }
}
