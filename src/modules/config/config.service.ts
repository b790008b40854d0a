/**
 * Config as code (Airbyte's Octavia, Terraform, meltano.yml): one YAML document declares a
 * workspace's authentications, connectors, mappings, pipelines and webhooks by name; export
 * writes it, plan compares it with the workspace, apply makes the workspace match it. The
 * format is documented in docs/config-as-code.md.
 *
 * Contract:
 * - Export is deterministic (sections and keys in a fixed order, objects sorted by name,
 *   defaults omitted, connector config keys sorted, mapping specs in their own order) and
 *   holds no id, timestamp, version or secret: every stored secret is a `${NAME}` reference
 *   with a name derived from the object and field (`SLUICE_SECRET_<CONNECTOR>_<FIELD>`,
 *   `SLUICE_AUTH_<NAME>_<FIELD>`, `SLUICE_WEBHOOK_<NAME>_SECRET`).
 * - Plan and apply take the document, the values of its `${NAME}` references (`env`, filled by
 *   the client from its own environment), a file name for messages and `prune`. Everything
 *   that can be checked without writing is checked first, through the services' own checks
 *   (driver config schemas, authentication params, mapping specs, pipeline settings, webhook
 *   URLs and secrets) plus the document's shape and its references by name: any problem is
 *   one ValidationError naming `<file>:<line>:<column> <path>` per problem, and nothing is
 *   written.
 * - Secrets compare decrypted, inside the services (`changedSecrets`, `secretMatches`); a plan
 *   never shows a secret value, only `(secret changed)`.
 * - Apply writes through the services (their validation, events, audit, encryption), in
 *   dependency order (authentications → connectors → mappings → pipelines → webhooks),
 *   deletes (only with `prune`) last in reverse order. What can only be checked while writing
 *   (a pipeline's streams against the source's catalog) may still fail a step: the error
 *   names the step and everything applied before it; applying the fixed document again
 *   continues from there. A document that matches the workspace writes nothing.
 */
import type { PrismaClient } from '../../db/client.js';
import { ConflictError, InUseError, NotFoundError, ValidationError, type FieldError } from '../../errors.js';
import { getDriver } from '../../engine/drivers/index.js';
import type { ConfiguredStream, ConnectorRole, SyncMode, WriteMode } from '../../engine/drivers/types.js';
import type { MappingSpec } from '../../engine/mapping/mapping.js';
import type { ScheduleUnit } from '../../engine/scheduler/schedule.js';
import { PLACEHOLDER } from '../../security/secrets-redact.js';
import {
  SECRET_FIELDS,
  type AuthenticationParamsInput,
  type AuthenticationRow,
  type AuthenticationService,
  type AuthenticationType,
  type ParamsField,
  type StoredParams,
} from '../authentication/authentication.service.js';
import { acceptsAuthentication, type ConnectorService } from '../connector/connector.service.js';
import { driverSecretPaths, secretFieldPaths } from '../connector/secrets.js';
import { EVENT_TYPES, type EventType } from '../event/event.types.js';
import { parseSpec, type MappingService } from '../mapping/mapping.service.js';
import type { PipelineService, StreamInput } from '../pipeline/pipeline.service.js';
import { checkUrl, checkWebhookSecret, type EndpointRow, type WebhookService } from '../webhook/webhook.service.js';
import {
  compareText,
  escapeString,
  escapeStrings,
  formatPath,
  interpolate,
  isPlainObject,
  parseYaml,
  Problems,
  Reader,
  sortKeys,
  writeYaml,
  type DocPath,
  type ParsedYaml,
} from './config.document.js';

// ---------------------------------------------------------------------------------------------
// Public shapes.

export type ConfigSection = 'authentications' | 'connectors' | 'mappings' | 'pipelines' | 'webhooks';
/** Dependency order: an object only references objects of earlier sections. */
export const SECTIONS: readonly ConfigSection[] = ['authentications', 'connectors', 'mappings', 'pipelines', 'webhooks'];

export type ConfigObjectType = 'AUTHENTICATION' | 'CONNECTOR' | 'MAPPING' | 'PIPELINE' | 'WEBHOOK';
const OBJECT_TYPE: Record<ConfigSection, ConfigObjectType> = {
  authentications: 'AUTHENTICATION',
  connectors: 'CONNECTOR',
  mappings: 'MAPPING',
  pipelines: 'PIPELINE',
  webhooks: 'WEBHOOK',
};
const SINGULAR: Record<ConfigSection, string> = {
  authentications: 'authentication',
  connectors: 'connector',
  mappings: 'mapping',
  pipelines: 'pipeline',
  webhooks: 'webhook',
};

export type ConfigChangeKind = 'CREATE' | 'UPDATE' | 'DELETE' | 'UNCHANGED';

export interface ConfigFieldChange {
  /** Path inside the object, e.g. `batchSize`, `config.delimiter`, `streams[orders].syncMode`. */
  path: string;
  /** The current value as JSON text; null when absent (and for secrets). */
  before: string | null;
  /** The new value as JSON text; null when absent (and for secrets). */
  after: string | null;
  /** A secret field changed: its values are never shown. */
  secret: boolean;
}

export interface ConfigChange {
  kind: ConfigChangeKind;
  objectType: ConfigObjectType;
  section: ConfigSection;
  name: string;
  /** `pipelines.orders`. */
  address: string;
  /** The fields that change (UPDATE only). */
  fields: ConfigFieldChange[];
}

export interface ConfigPlan {
  /** The human-readable plan; exactly `no changes\n` when nothing changes. */
  text: string;
  hasChanges: boolean;
  changes: ConfigChange[];
}

export interface ConfigExport {
  document: string;
  /** The `${NAME}` references the document holds (secrets to set before applying it), sorted. */
  secretReferences: string[];
}

export interface PlanInput {
  document: string;
  fileName?: string | null;
  prune?: boolean | null;
  /** Values of the `${NAME}` references, NAME → value (the client's environment). */
  env?: unknown;
}

export interface ApplyInput extends PlanInput {
  dryRun?: boolean | null;
}

export interface ConfigServiceDeps {
  /** Reads only (scoped to the caller's workspace); every write goes through a service. */
  db: PrismaClient;
  authentications: AuthenticationService;
  connectors: ConnectorService;
  mappings: MappingService;
  pipelines: PipelineService;
  webhooks: WebhookService;
}

// ---------------------------------------------------------------------------------------------
// Internal shapes.

/** A secret in a comparable view: its value is never there. */
class SecretValue {
  constructor(readonly changed = false) {}
}
/** A desired field the document leaves to the server: equal to whatever is stored. */
const KEEP = Symbol('keep');

type ScheduleView = { cron: string; timezone: string } | { every: number; unit: ScheduleUnit } | null;

const DEFAULT_FILE = 'config.yaml';
const AUTH_FIELDS = ['basic', 'apiKey', 'bearer', 'oauth2ClientCredentials'] as const satisfies readonly ParamsField[];
const FIELD_OF_TYPE: Record<AuthenticationType, ParamsField> = { BASIC: 'basic', API_KEY: 'apiKey', BEARER: 'bearer', OAUTH2_CLIENT_CREDENTIALS: 'oauth2ClientCredentials' };
/** Params of each type, in document order. */
const AUTH_PARAMS: Record<ParamsField, readonly string[]> = {
  basic: ['username', 'password'],
  apiKey: ['name', 'in', 'key'],
  bearer: ['token'],
  oauth2ClientCredentials: ['tokenUrl', 'clientId', 'clientSecret', 'scope', 'audience', 'clientAuthentication'],
};
/** Params left out of an export at these values. */
const AUTH_DEFAULTS: Record<string, unknown> = { in: 'HEADER', clientAuthentication: 'BASIC', scope: null, audience: null };
const TYPE_OF_FIELD: Record<ParamsField, AuthenticationType> = { basic: 'BASIC', apiKey: 'API_KEY', bearer: 'BEARER', oauth2ClientCredentials: 'OAUTH2_CLIENT_CREDENTIALS' };

const CONNECTOR_KEYS = ['driver', 'authentication', 'config'] as const;
const MAPPING_KEYS = ['description', 'spec'] as const;
const PIPELINE_KEYS = [
  'source',
  'destination',
  'mapping',
  'writeMode',
  'streams',
  'batchSize',
  'failureThreshold',
  'maxAttempts',
  'retryBackoffMs',
  'trigger',
  'schedule',
  'enabled',
  'allowParallelRuns',
  'concurrencyPolicy',
  'catchUp',
  'executionTimeoutMs',
  'autoStopAfterFailures',
] as const;
const STREAM_KEYS = ['name', 'fields', 'syncMode', 'cursorField', 'primaryKey', 'destinationName', 'writeMode'] as const;
const SCHEDULE_KEYS = ['cron', 'timezone', 'every', 'unit'] as const;
const WEBHOOK_KEYS = ['url', 'eventTypes', 'pipelines', 'enabled', 'secret'] as const;

const WRITE_MODES: readonly WriteMode[] = ['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE'];
const SYNC_MODES: readonly SyncMode[] = ['FULL_REFRESH', 'INCREMENTAL'];
const TRIGGERS = ['ON_DEMAND', 'SCHEDULE', 'SUBSCRIPTION'] as const;
const UNITS: readonly ScheduleUnit[] = ['MINUTES', 'HOURS', 'DAYS', 'WEEKS', 'MONTHS'];
const CONCURRENCY = ['SKIP', 'QUEUE'] as const;
const CATCH_UP = ['SKIP', 'RUN_ONCE'] as const;

/** Pipeline settings left out of an export at these values (what create defaults to). */
const PIPELINE_DEFAULTS = {
  mapping: null,
  writeMode: 'APPEND',
  batchSize: 5000,
  failureThreshold: 5,
  maxAttempts: 3,
  retryBackoffMs: 10_000,
  trigger: 'ON_DEMAND',
  schedule: null,
  enabled: true,
  allowParallelRuns: false,
  concurrencyPolicy: 'SKIP',
  catchUp: 'SKIP',
  executionTimeoutMs: null,
  autoStopAfterFailures: 5,
} as const;

type PipelineRow = Awaited<ReturnType<PrismaClient['pipeline']['findMany']>>[number];
type ConnectorRow = Awaited<ReturnType<PrismaClient['connector']['findMany']>>[number];
type MappingRow = Awaited<ReturnType<PrismaClient['mapping']['findMany']>>[number];

interface DesiredAuthentication {
  field: ParamsField;
  type: AuthenticationType;
  /** Normalized, secrets in clear. */
  params: StoredParams;
}
interface DesiredConnector {
  driver: string;
  role: ConnectorRole;
  authentication: string | null;
  /** Validated (driver defaults filled in), secrets in clear. */
  config: Record<string, unknown>;
}
interface DesiredMapping {
  description: string | null;
  spec: MappingSpec;
}
interface DesiredStream {
  name: string;
  fields: string[] | null;
  syncMode: SyncMode;
  cursorField: string[] | null;
  /** undefined: the source's key (the server fills it in). */
  primaryKey: string[] | null | undefined;
  destinationName: string | null;
  writeMode: WriteMode | null;
}
interface DesiredPipeline {
  source: string;
  destination: string;
  mapping: string | null;
  writeMode: WriteMode;
  /** null: not managed (every discovered stream at creation, kept on update). */
  streams: DesiredStream[] | null;
  batchSize: number;
  failureThreshold: number;
  maxAttempts: number;
  retryBackoffMs: number;
  trigger: (typeof TRIGGERS)[number];
  schedule: ScheduleView;
  enabled: boolean;
  allowParallelRuns: boolean;
  concurrencyPolicy: (typeof CONCURRENCY)[number];
  catchUp: (typeof CATCH_UP)[number];
  executionTimeoutMs: number | null;
  autoStopAfterFailures: number;
}
interface DesiredWebhook {
  url: string;
  eventTypes: EventType[];
  pipelines: string[];
  enabled: boolean;
  /** null: not managed (generated at creation, kept on update). */
  secret: string | null;
}

interface Desired {
  authentications: Map<string, DesiredAuthentication>;
  connectors: Map<string, DesiredConnector>;
  mappings: Map<string, DesiredMapping>;
  pipelines: Map<string, DesiredPipeline>;
  webhooks: Map<string, DesiredWebhook>;
}

interface Current {
  authentications: Map<string, AuthenticationRow[]>;
  connectors: Map<string, ConnectorRow[]>;
  mappings: Map<string, MappingRow[]>;
  pipelines: Map<string, PipelineRow[]>;
  webhooks: Map<string, EndpointRow[]>;
  /** Names by row id, for references. */
  names: { connectors: Map<string, string>; mappings: Map<string, string>; authentications: Map<string, string>; pipelines: Map<string, string> };
}

/** One planned change with what apply needs. */
interface Step extends ConfigChange {
  row?: { id: string; version?: number };
  /** Secret fields that differ (webhooks: the signing secret). */
  secretChanged?: boolean;
}

interface FullPlan extends ConfigPlan {
  steps: Step[];
  desired: Desired;
  current: Current;
  doc: ParsedYaml;
}

// ---------------------------------------------------------------------------------------------

export class ConfigService {
  constructor(private readonly deps: ConfigServiceDeps) {}

  // ---- export --------------------------------------------------------------------------------

  async exportConfig(): Promise<ConfigExport> {
    const current = await this.load();
    const duplicates: FieldError[] = [];
    for (const section of SECTIONS) {
      for (const [name, rows] of current[section] as Map<string, unknown[]>) {
        if (rows.length > 1) {
          duplicates.push({ path: formatPath([section, name]), message: `${rows.length} ${section} are named "${name}"; names identify objects in a document: rename all but one` });
        }
      }
    }
    if (duplicates.length) throw new ValidationError('the workspace cannot be exported', duplicates);
    const one = <T>(m: Map<string, T[]>) => [...m.entries()].map(([name, rows]) => [name, rows[0]!] as const).sort((a, b) => compareText(a[0], b[0]));
    const env = new EnvNames();
    const out: Record<string, unknown> = { version: 1 };

    const auths: Record<string, unknown> = {};
    for (const [name, row] of one(current.authentications)) {
      const field = FIELD_OF_TYPE[row.type];
      const stored = (row.config ?? {}) as StoredParams;
      const params: Record<string, unknown> = {};
      for (const k of AUTH_PARAMS[field]) {
        const v = stored[k] ?? null;
        if (SECRET_FIELDS[row.type].includes(k)) {
          if (v !== null && v !== '') params[k] = `\${${env.take(['SLUICE_AUTH', name, k])}}`;
        } else if (v !== null && !(k in AUTH_DEFAULTS && AUTH_DEFAULTS[k] === v)) params[k] = escapeString(v);
      }
      auths[name] = { [field]: params };
    }

    const connectors: Record<string, unknown> = {};
    const unknownDrivers: string[] = [];
    for (const [name, row] of one(current.connectors)) {
      if (!getDriver(row.driver)) {
        unknownDrivers.push(name);
        continue;
      }
      const config = escapeStrings(sortKeys(row.config ?? {})) as Record<string, unknown>;
      for (const segs of secretFieldPaths(driverSecretPaths(row.driver), row.config)) {
        setAt(config, segs, `\${${env.take(['SLUICE_SECRET', name, ...segs])}}`);
      }
      const c: Record<string, unknown> = { driver: row.driver };
      if (row.authenticationId) c.authentication = escapeString(current.names.authentications.get(row.authenticationId) ?? '');
      c.config = config;
      connectors[name] = c;
    }
    if (unknownDrivers.length) {
      throw new ValidationError(
        'the workspace cannot be exported',
        unknownDrivers.map((n) => ({ path: `connectors.${n}`, message: 'its driver is not on this server, so its secret fields are unknown' })),
      );
    }

    const mappings: Record<string, unknown> = {};
    for (const [name, row] of one(current.mappings)) {
      const m: Record<string, unknown> = {};
      if (row.description != null) m.description = escapeString(row.description);
      const spec = row.spec as unknown as MappingSpec;
      const s: Record<string, unknown> = {};
      if (spec.mapping && Object.keys(spec.mapping).length) s.mapping = spec.mapping;
      if (spec.unset?.length) s.unset = spec.unset;
      if (spec.cast && Object.keys(spec.cast).length) s.cast = spec.cast;
      if (spec.passThrough) s.passThrough = true;
      m.spec = escapeStrings(s);
      mappings[name] = m;
    }

    const pipelines: Record<string, unknown> = {};
    for (const [name, row] of one(current.pipelines)) {
      const v = pipelineView(row, current);
      const p: Record<string, unknown> = { source: escapeString(v.source), destination: escapeString(v.destination) };
      for (const key of PIPELINE_KEYS) {
        if (key === 'source' || key === 'destination') continue;
        if (key === 'streams') {
          const streams = [...(row.streams as unknown as ConfiguredStream[])].sort((a, b) => compareText(a.name, b.name));
          p.streams = streams.map((s) => {
            const o: Record<string, unknown> = { name: s.name };
            if (s.fields != null) o.fields = s.fields;
            if (s.syncMode !== 'FULL_REFRESH') o.syncMode = s.syncMode;
            if (s.cursorField != null) o.cursorField = s.cursorField;
            if (s.primaryKey != null) o.primaryKey = s.primaryKey;
            if (s.destinationName != null) o.destinationName = s.destinationName;
            if (s.writeMode != null) o.writeMode = s.writeMode;
            return escapeStrings(o);
          });
          continue;
        }
        const value = v[key as keyof typeof v];
        if (deepEqual(value, (PIPELINE_DEFAULTS as Record<string, unknown>)[key])) continue;
        if (key === 'schedule' && value && 'cron' in (value as object)) {
          const sch = value as { cron: string; timezone: string };
          p.schedule = sch.timezone === 'UTC' ? { cron: escapeString(sch.cron) } : { cron: escapeString(sch.cron), timezone: escapeString(sch.timezone) };
          continue;
        }
        p[key] = escapeStrings(value);
      }
      pipelines[name] = p;
    }

    const webhooks: Record<string, unknown> = {};
    for (const [name, row] of one(current.webhooks)) {
      const v = webhookView(row, current);
      const w: Record<string, unknown> = { url: escapeString(v.url) };
      if (v.eventTypes.length) w.eventTypes = v.eventTypes;
      if (v.pipelines.length) w.pipelines = v.pipelines.map(escapeString);
      if (!v.enabled) w.enabled = false;
      w.secret = `\${${env.take(['SLUICE_WEBHOOK', name, 'SECRET'])}}`;
      webhooks[name] = w;
    }

    const sections: Record<ConfigSection, Record<string, unknown>> = { authentications: auths, connectors, mappings, pipelines, webhooks };
    for (const section of SECTIONS) if (Object.keys(sections[section]).length) out[section] = sections[section];
    return { document: writeYaml(out), secretReferences: env.all() };
  }

  // ---- plan ----------------------------------------------------------------------------------

  async planConfig(input: PlanInput): Promise<ConfigPlan> {
    const { text, hasChanges, changes } = await this.plan(input);
    return { text, hasChanges, changes };
  }

  private async plan(input: PlanInput): Promise<FullPlan> {
    const fileName = input.fileName?.trim() || DEFAULT_FILE;
    const env = readEnv(input.env);
    const doc = parseYaml(input.document, fileName);
    const problems = new Problems();
    const value = interpolate(doc.value, env, problems, new Set());
    // An unset reference would only cause follow-up errors about the value it leaves.
    if (!problems.empty) throw problems.toError(doc);
    const desired = this.readDocument(value, problems);
    if (!problems.empty) throw problems.toError(doc);
    const current = await this.load();
    const steps = this.diff(desired, current, !!input.prune, problems);
    if (!problems.empty) throw problems.toError(doc);
    const text = planText(steps);
    return { text, hasChanges: steps.some((s) => s.kind !== 'UNCHANGED'), changes: steps, steps, desired, current, doc };
  }

  // ---- apply ---------------------------------------------------------------------------------

  async applyConfig(input: ApplyInput): Promise<{ plan: ConfigPlan; applied: boolean }> {
    const full = await this.plan(input);
    const plan: ConfigPlan = { text: full.text, hasChanges: full.hasChanges, changes: full.changes };
    if (input.dryRun || !full.hasChanges) return { plan, applied: false };
    const { desired, current, doc } = full;
    const ids = {
      authentications: uniqueIds(current.authentications),
      connectors: uniqueIds(current.connectors),
      mappings: uniqueIds(current.mappings),
      pipelines: uniqueIds(current.pipelines),
    };
    const need = (m: Map<string, string>, name: string) => {
      const id = m.get(name);
      if (!id) throw new ConflictError(`"${name}" is not there any more`);
      return id;
    };
    const applied: string[] = [];
    for (const step of full.steps) {
      if (step.kind === 'UNCHANGED') continue;
      const label = `${step.kind.toLowerCase()} ${step.address}`;
      try {
        await this.applyStep(step, desired, current, ids, need, () => applied.push(label));
      } catch (err) {
        throw failure(err, step, label, applied, doc);
      }
      if (applied[applied.length - 1] !== label) applied.push(label);
    }
    return { plan, applied: true };
  }

  private async applyStep(
    step: Step,
    desired: Desired,
    current: Current,
    ids: Record<'authentications' | 'connectors' | 'mappings' | 'pipelines', Map<string, string>>,
    need: (m: Map<string, string>, name: string) => string,
    partlyApplied: () => void,
  ): Promise<void> {
    const services = this.deps;
    const name = step.name;
    if (step.kind === 'DELETE') {
      const id = step.row!.id;
      switch (step.section) {
        case 'authentications':
          await services.authentications.delete(id);
          break;
        case 'connectors':
          await services.connectors.delete(id);
          break;
        case 'mappings':
          await services.mappings.delete(id);
          break;
        case 'pipelines':
          await services.pipelines.delete(id);
          break;
        case 'webhooks':
          await services.webhooks.delete(id);
          break;
      }
      return;
    }
    const create = step.kind === 'CREATE';
    switch (step.section) {
      case 'authentications': {
        const d = desired.authentications.get(name)!;
        const params = { [d.field]: d.params } as AuthenticationParamsInput;
        if (create) ids.authentications.set(name, (await services.authentications.create({ name, ...params })).id);
        else await services.authentications.update({ id: step.row!.id, ...params, expectedVersion: step.row!.version ?? null });
        return;
      }
      case 'connectors': {
        const d = desired.connectors.get(name)!;
        const authenticationId = d.authentication === null ? null : need(ids.authentications, d.authentication);
        if (create) ids.connectors.set(name, (await services.connectors.create({ name, driver: d.driver, config: d.config, authenticationId })).id);
        else {
          // An unchanged authentication is not named again: the service then refuses to send its
          // stored credentials to a changed address (detach it, change the address, attach it back).
          const authChanged = step.fields.some((f) => f.path === 'authentication');
          await services.connectors.update({ id: step.row!.id, config: d.config, authenticationId: authChanged ? authenticationId : undefined, expectedVersion: step.row!.version ?? null });
        }
        return;
      }
      case 'mappings': {
        const d = desired.mappings.get(name)!;
        if (create) ids.mappings.set(name, (await services.mappings.create({ name, description: d.description, spec: d.spec })).id);
        else await services.mappings.update({ id: step.row!.id, description: d.description, spec: d.spec, expectedVersion: step.row!.version ?? null });
        return;
      }
      case 'pipelines': {
        const d = desired.pipelines.get(name)!;
        const settings = { writeMode: d.writeMode, ...runSettings(d) };
        const destinationId = need(ids.connectors, d.destination);
        const mappingId = d.mapping === null ? null : need(ids.mappings, d.mapping);
        if (create) {
          const streams = d.streams?.map((s) => streamInput(s, null)) ?? null;
          const p = await services.pipelines.create({ name, sourceId: need(ids.connectors, d.source), destinationId, mappingId, streams, ...settings });
          ids.pipelines.set(name, p.id);
        } else {
          const row = current.pipelines.get(name)![0]!;
          const stored = row.streams as unknown as ConfiguredStream[];
          const streams = d.streams ? d.streams.map((s) => streamInput(s, stored.find((c) => c.name === s.name) ?? null)) : undefined;
          await services.pipelines.update({ id: row.id, destinationId, mappingId, ...(streams ? { streams } : {}), ...settings });
        }
        return;
      }
      case 'webhooks': {
        const d = desired.webhooks.get(name)!;
        const pipelineIds = d.pipelines.map((p) => need(ids.pipelines, p));
        const input = { url: d.url, description: name, eventTypes: d.eventTypes, pipelineIds, enabled: d.enabled };
        if (create) {
          await services.webhooks.create({ ...input, secret: d.secret });
          return;
        }
        const id = step.row!.id;
        const otherFields = step.fields.some((f) => f.path !== 'secret');
        if (otherFields) await services.webhooks.update({ id, ...input });
        if (step.secretChanged && d.secret !== null) {
          if (otherFields) partlyApplied();
          // A declared secret change is a rotation: the previous secret is also signed with during the default overlap.
          await services.webhooks.rotateSecret(id, null, d.secret);
        }
        return;
      }
    }
  }

  // ---- reading the document ------------------------------------------------------------------

  private readDocument(value: unknown, problems: Problems): Desired {
    const r = new Reader(problems);
    const desired: Desired = { authentications: new Map(), connectors: new Map(), mappings: new Map(), pipelines: new Map(), webhooks: new Map() };
    const top = r.object(value, [], ['version', ...SECTIONS]);
    if (!top) {
      if (top === null) problems.add([], 'the document is empty: it starts with `version: 1`');
      return desired;
    }
    if (top.version !== 1) problems.add(['version'], top.version === undefined ? 'is required: `version: 1`' : 'must be 1 (the only version of the format)');
    const entries = (section: ConfigSection): [string, unknown, DocPath][] => {
      const m = r.object(top[section], [section], Object.keys((top[section] ?? {}) as object));
      if (!m) return [];
      return Object.entries(m)
        .filter(([name]) => checkName(name, [section, name], problems))
        .map(([name, v]) => [name, v, [section, name]]);
    };

    // Names first: references are checked against the whole document.
    const declared = Object.fromEntries(SECTIONS.map((s) => [s, new Set(isPlainObject(top[s]) ? Object.keys(top[s] as object) : [])])) as Record<ConfigSection, Set<string>>;
    const connectorRoles = new Map<string, ConnectorRole>();

    for (const [name, v, at] of entries('authentications')) {
      const o = r.object(v, at, AUTH_FIELDS);
      if (!o) {
        if (o === null) problems.add(at, `give exactly one of ${AUTH_FIELDS.join(', ')}`);
        continue;
      }
      const input: AuthenticationParamsInput = {};
      let ok = true;
      for (const field of AUTH_FIELDS) {
        if (o[field] === undefined) continue;
        const params = r.object(o[field], [...at, field], AUTH_PARAMS[field]);
        if (!params) {
          ok = false;
          if (params === null) problems.add([...at, field], 'must be a map of parameters');
          continue;
        }
        for (const k of SECRET_FIELDS[TYPE_OF_FIELD[field]]) {
          if (params[k] === PLACEHOLDER) problems.add([...at, field, k], 'the placeholder cannot be applied: write the secret, or a ${NAME} reference to it');
        }
        (input as Record<string, unknown>)[field] = params;
      }
      if (!ok) continue;
      try {
        const n = this.deps.authentications.normalizeParams(input);
        desired.authentications.set(name, n);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.addServiceError(err, at, { input: [] });
      }
    }

    for (const [name, v, at] of entries('connectors')) {
      const o = r.object(v, at, CONNECTOR_KEYS);
      if (!o) {
        if (o === null) problems.add([...at, 'driver'], 'is required');
        continue;
      }
      const driverName = r.string(o.driver, [...at, 'driver'], true);
      const authentication = r.string(o.authentication, [...at, 'authentication']);
      const config = o.config === undefined || o.config === null ? {} : o.config;
      if (!isPlainObject(config)) problems.add([...at, 'config'], 'must be a map');
      if (!driverName || !isPlainObject(config)) continue;
      const driver = getDriver(driverName);
      if (driver) connectorRoles.set(name, driver.role);
      if (authentication) {
        if (!declared.authentications.has(authentication)) problems.add([...at, 'authentication'], `no authentication "${authentication}" in the document`);
        else if (driver && !acceptsAuthentication(driver)) problems.add([...at, 'authentication'], `driver "${driver.name}" does not take credentials`);
      }
      for (const segs of secretFieldPaths(driverSecretPaths(driverName), config)) {
        if (getAt(config, segs) === PLACEHOLDER) problems.add([...at, 'config', ...segs], 'the placeholder cannot be applied: write the secret, or a ${NAME} reference to it');
      }
      try {
        const validated = this.deps.connectors.validate(driverName, config);
        desired.connectors.set(name, { driver: validated.driver.name, role: validated.driver.role, authentication: authentication ?? null, config: validated.config });
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.addServiceError(err, at, { role: ['driver'] });
      }
    }

    for (const [name, v, at] of entries('mappings')) {
      const o = r.object(v, at, MAPPING_KEYS);
      if (!o) {
        if (o === null) problems.add([...at, 'spec'], 'is required');
        continue;
      }
      const description = r.string(o.description, [...at, 'description']);
      if (o.spec === undefined || o.spec === null) {
        problems.add([...at, 'spec'], 'is required');
        continue;
      }
      try {
        const spec = parseSpec(o.spec);
        if (description !== undefined) desired.mappings.set(name, { description, spec });
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.addServiceError(err, at);
      }
    }

    for (const [name, v, at] of entries('pipelines')) {
      const o = r.object(v, at, PIPELINE_KEYS);
      if (!o) {
        if (o === null) problems.add([...at, 'source'], 'is required');
        continue;
      }
      const p = (k: string): DocPath => [...at, k];
      const source = r.string(o.source, p('source'), true);
      const destination = r.string(o.destination, p('destination'), true);
      const mapping = r.string(o.mapping, p('mapping'));
      let refsOk = true;
      const ref = (n: string | null | undefined, key: string, role: ConnectorRole | null) => {
        if (!n) return;
        const section: ConfigSection = role ? 'connectors' : 'mappings';
        if (!declared[section].has(n)) {
          problems.add(p(key), `no ${SINGULAR[section]} "${n}" in the document`);
          refsOk = false;
        } else if (role && connectorRoles.has(n) && connectorRoles.get(n) !== role) {
          problems.add(p(key), `connector "${n}" is a ${connectorRoles.get(n)}, not a ${role}`);
          refsOk = false;
        }
      };
      ref(source, 'source', 'SOURCE');
      ref(destination, 'destination', 'DESTINATION');
      ref(mapping, 'mapping', null);
      const writeMode = r.oneOf(o.writeMode, p('writeMode'), WRITE_MODES);
      const streams = this.readStreams(r, o.streams, p('streams'));
      const batchSize = r.int(o.batchSize, p('batchSize'));
      const failureThreshold = r.number(o.failureThreshold, p('failureThreshold'));
      const maxAttempts = r.int(o.maxAttempts, p('maxAttempts'));
      const retryBackoffMs = r.int(o.retryBackoffMs, p('retryBackoffMs'));
      const trigger = r.oneOf(o.trigger, p('trigger'), TRIGGERS);
      const schedule = this.readSchedule(r, o.schedule, p('schedule'));
      const enabled = r.bool(o.enabled, p('enabled'));
      const allowParallelRuns = r.bool(o.allowParallelRuns, p('allowParallelRuns'));
      const concurrencyPolicy = r.oneOf(o.concurrencyPolicy, p('concurrencyPolicy'), CONCURRENCY);
      const catchUp = r.oneOf(o.catchUp, p('catchUp'), CATCH_UP);
      const executionTimeoutMs = r.int(o.executionTimeoutMs, p('executionTimeoutMs'));
      const autoStopAfterFailures = r.int(o.autoStopAfterFailures, p('autoStopAfterFailures'));
      const read = [writeMode, streams, batchSize, failureThreshold, maxAttempts, retryBackoffMs, trigger, schedule, enabled, allowParallelRuns, concurrencyPolicy, catchUp, executionTimeoutMs, autoStopAfterFailures];
      if (!source || !destination || mapping === undefined || !refsOk || read.includes(undefined)) continue;
      const d: DesiredPipeline = {
        source,
        destination,
        mapping: mapping ?? null,
        writeMode: writeMode ?? PIPELINE_DEFAULTS.writeMode,
        streams: streams ?? null,
        batchSize: batchSize ?? PIPELINE_DEFAULTS.batchSize,
        failureThreshold: failureThreshold ?? PIPELINE_DEFAULTS.failureThreshold,
        maxAttempts: maxAttempts ?? PIPELINE_DEFAULTS.maxAttempts,
        retryBackoffMs: retryBackoffMs ?? PIPELINE_DEFAULTS.retryBackoffMs,
        trigger: trigger ?? PIPELINE_DEFAULTS.trigger,
        schedule: schedule ?? null,
        enabled: enabled ?? PIPELINE_DEFAULTS.enabled,
        allowParallelRuns: allowParallelRuns ?? PIPELINE_DEFAULTS.allowParallelRuns,
        concurrencyPolicy: concurrencyPolicy ?? PIPELINE_DEFAULTS.concurrencyPolicy,
        catchUp: catchUp ?? PIPELINE_DEFAULTS.catchUp,
        executionTimeoutMs: executionTimeoutMs ?? null,
        autoStopAfterFailures: autoStopAfterFailures ?? PIPELINE_DEFAULTS.autoStopAfterFailures,
      };
      const destDriver = desired.connectors.get(destination)?.driver;
      try {
        this.deps.pipelines.checkSettings({ name, ...d, destinationDriver: destDriver ?? '' });
        desired.pipelines.set(name, d);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.addServiceError(err, at);
      }
    }

    for (const [name, v, at] of entries('webhooks')) {
      const o = r.object(v, at, WEBHOOK_KEYS);
      if (!o) {
        if (o === null) problems.add([...at, 'url'], 'is required');
        continue;
      }
      const url = r.string(o.url, [...at, 'url'], true);
      const eventTypes = r.stringList(o.eventTypes, [...at, 'eventTypes']);
      (eventTypes ?? []).forEach((t, i) => {
        if (!(EVENT_TYPES as readonly string[]).includes(t)) problems.add([...at, 'eventTypes', i], `unknown event type "${t}"`);
      });
      const pipelines = r.stringList(o.pipelines, [...at, 'pipelines']);
      (pipelines ?? []).forEach((n, i) => {
        if (!declared.pipelines.has(n)) problems.add([...at, 'pipelines', i], `no pipeline "${n}" in the document`);
      });
      const enabled = r.bool(o.enabled, [...at, 'enabled']);
      const secret = r.string(o.secret, [...at, 'secret']);
      let normalized: string | null = null;
      try {
        if (url) normalized = checkUrl(url);
        if (secret) checkWebhookSecret(secret);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        problems.addServiceError(err, at);
        continue;
      }
      if (!normalized || eventTypes === undefined || pipelines === undefined || enabled === undefined || secret === undefined) continue;
      desired.webhooks.set(name, {
        url: normalized,
        eventTypes: [...new Set(eventTypes ?? [])].sort(compareText) as EventType[],
        pipelines: [...new Set(pipelines ?? [])].sort(compareText),
        enabled: enabled ?? true,
        secret: secret || null,
      });
    }
    return desired;
  }

  private readStreams(r: Reader, v: unknown, at: DocPath): DesiredStream[] | null | undefined {
    const list = r.list(v, at);
    if (!list) return list;
    const out: DesiredStream[] = [];
    let ok = true;
    const seen = new Set<string>();
    list.forEach((item, i) => {
      const sp = [...at, i];
      const o = r.object(item, sp, STREAM_KEYS);
      if (!o) {
        if (o === null) r.problems.add([...sp, 'name'], 'is required');
        ok = false;
        return;
      }
      const name = r.string(o.name, [...sp, 'name'], true);
      if (name && seen.has(name)) r.problems.add([...sp, 'name'], `stream "${name}" listed twice`);
      if (name) seen.add(name);
      const fields = r.stringList(o.fields, [...sp, 'fields']);
      const syncMode = r.oneOf(o.syncMode, [...sp, 'syncMode'], SYNC_MODES);
      const cursorField = r.stringList(o.cursorField, [...sp, 'cursorField']);
      const primaryKey = r.stringList(o.primaryKey, [...sp, 'primaryKey']);
      const destinationName = r.string(o.destinationName, [...sp, 'destinationName']);
      const writeMode = r.oneOf(o.writeMode, [...sp, 'writeMode'], WRITE_MODES);
      if (!name || [fields, syncMode, cursorField, primaryKey, destinationName, writeMode].includes(undefined)) {
        ok = false;
        return;
      }
      out.push({
        name,
        fields: fields ?? null,
        syncMode: syncMode ?? 'FULL_REFRESH',
        cursorField: cursorField ?? null,
        primaryKey: o.primaryKey === undefined ? undefined : (primaryKey ?? null),
        destinationName: destinationName ?? null,
        writeMode: writeMode ?? null,
      });
    });
    return ok ? out : undefined;
  }

  private readSchedule(r: Reader, v: unknown, at: DocPath): ScheduleView | undefined {
    const o = r.object(v, at, SCHEDULE_KEYS);
    if (!o) return o === null ? null : undefined;
    const cron = r.string(o.cron, [...at, 'cron']);
    const timezone = r.string(o.timezone, [...at, 'timezone']);
    const every = r.int(o.every, [...at, 'every']);
    const unit = r.oneOf(o.unit, [...at, 'unit'], UNITS);
    if ([cron, timezone, every, unit].includes(undefined)) return undefined;
    if (cron && (every != null || unit != null)) {
      r.problems.add(at, 'give either cron (with timezone) or every with unit, not both');
      return undefined;
    }
    if (!cron && timezone) {
      r.problems.add([...at, 'timezone'], 'only a cron schedule has a time zone');
      return undefined;
    }
    if (cron) return { cron, timezone: timezone ?? 'UTC' };
    if (every == null && unit == null) {
      r.problems.add(at, 'give cron, or every with unit');
      return undefined;
    }
    // The pipeline service reports a missing half (schedule.every / schedule.unit).
    return { every: every as number, unit: unit as ScheduleUnit };
  }

  // ---- the workspace -------------------------------------------------------------------------

  private async load(): Promise<Current> {
    const db = this.deps.db;
    const [authentications, connectors, mappings, pipelines, webhooks] = await Promise.all([
      db.authentication.findMany({ orderBy: { id: 'asc' } }),
      db.connector.findMany({ orderBy: { id: 'asc' } }),
      db.mapping.findMany({ orderBy: { id: 'asc' } }),
      db.pipeline.findMany({ orderBy: { id: 'asc' } }),
      db.webhookEndpoint.findMany({ orderBy: { id: 'asc' } }),
    ]);
    const byName = <T>(rows: T[], nameOf: (r: T) => string) => {
      const m = new Map<string, T[]>();
      for (const row of rows) {
        const n = nameOf(row);
        m.set(n, [...(m.get(n) ?? []), row]);
      }
      return m;
    };
    const names = <T extends { id: string; name: string }>(rows: T[]) => new Map(rows.map((r) => [r.id, r.name]));
    return {
      authentications: byName(authentications, (a) => a.name),
      connectors: byName(connectors, (c) => c.name),
      mappings: byName(mappings, (m) => m.name),
      pipelines: byName(pipelines, (p) => p.name),
      webhooks: byName(webhooks, webhookName),
      names: { connectors: names(connectors), mappings: names(mappings), authentications: names(authentications), pipelines: names(pipelines) },
    };
  }

  // ---- comparing -----------------------------------------------------------------------------

  private diff(desired: Desired, current: Current, prune: boolean, problems: Problems): Step[] {
    const steps: Step[] = [];
    for (const section of SECTIONS) {
      const want = desired[section] as Map<string, unknown>;
      const have = current[section] as Map<string, { id: string; version?: number }[]>;
      for (const name of [...want.keys()].sort(compareText)) {
        const rows = have.get(name) ?? [];
        const base = { objectType: OBJECT_TYPE[section], section, name, address: formatPath([section, name]) };
        if (rows.length > 1) {
          problems.add([section, name], `${rows.length} ${section} of the workspace are named "${name}": rename all but one first`);
          continue;
        }
        const row = rows[0];
        if (!row) {
          steps.push({ ...base, kind: 'CREATE', fields: [] });
          continue;
        }
        const { fields, secretChanged } = this.compare(section, name, desired, current, row, problems);
        steps.push({ ...base, kind: fields.length ? 'UPDATE' : 'UNCHANGED', fields, row: { id: row.id, version: row.version }, secretChanged });
      }
    }
    if (prune) {
      for (const section of [...SECTIONS].reverse()) {
        const want = desired[section] as Map<string, unknown>;
        const have = current[section] as Map<string, { id: string; version?: number }[]>;
        for (const name of [...have.keys()].sort(compareText)) {
          if (want.has(name)) continue;
          for (const row of have.get(name)!) {
            steps.push({ objectType: OBJECT_TYPE[section], section, name, address: formatPath([section, name]), kind: 'DELETE', fields: [], row: { id: row.id } });
          }
        }
      }
    }
    return steps;
  }

  private compare(section: ConfigSection, name: string, desired: Desired, current: Current, row: unknown, problems: Problems): { fields: ConfigFieldChange[]; secretChanged?: boolean } {
    const fields: ConfigFieldChange[] = [];
    switch (section) {
      case 'authentications': {
        const d = desired.authentications.get(name)!;
        const a = row as AuthenticationRow;
        const changed = new Set(this.deps.authentications.changedSecrets(a, d.type, d.params));
        diffInto(authView(FIELD_OF_TYPE[a.type], (a.config ?? {}) as StoredParams, null), authView(d.field, d.params, changed), [], fields);
        break;
      }
      case 'connectors': {
        const d = desired.connectors.get(name)!;
        const c = row as ConnectorRow;
        if (c.driver !== d.driver) {
          problems.add([section, name, 'driver'], `the driver of a connector cannot change (it is "${c.driver}"): give the new connector another name`);
          break;
        }
        const changed = new Set(this.deps.connectors.changedSecrets(c, d.config));
        const before = { authentication: c.authenticationId ? (current.names.authentications.get(c.authenticationId) ?? null) : null, config: maskConfig(c.driver, c.config, null) };
        const after = { authentication: d.authentication, config: maskConfig(d.driver, d.config, changed) };
        diffInto(before, after, [], fields);
        break;
      }
      case 'mappings': {
        const d = desired.mappings.get(name)!;
        const m = row as MappingRow;
        diffInto({ description: m.description }, { description: d.description }, [], fields);
        if (JSON.stringify(m.spec) !== JSON.stringify(d.spec)) {
          const before = fields.length;
          diffInto(m.spec, d.spec, ['spec'], fields);
          // Entries apply in the order written: an order change is a change.
          if (fields.length === before) fields.push({ path: 'spec', before: render(m.spec), after: render(d.spec), secret: false });
        }
        break;
      }
      case 'pipelines': {
        const d = desired.pipelines.get(name)!;
        const p = row as PipelineRow;
        const before = pipelineView(p, current);
        if (before.source !== d.source) {
          problems.add([section, name, 'source'], `the source of a pipeline cannot change (it is "${before.source}"): give the new pipeline another name`);
          break;
        }
        diffInto(before, desiredPipelineView(d), [], fields);
        break;
      }
      case 'webhooks': {
        const d = desired.webhooks.get(name)!;
        const w = row as EndpointRow;
        const secretChanged = d.secret !== null && !this.deps.webhooks.secretMatches(w, d.secret);
        const before = { ...webhookView(w, current), description: w.description, secret: new SecretValue() };
        const after = { url: d.url, eventTypes: d.eventTypes, pipelines: d.pipelines, enabled: d.enabled, description: name, secret: d.secret === null ? KEEP : new SecretValue(secretChanged) };
        diffInto(before, after, [], fields);
        return { fields, secretChanged };
      }
    }
    return { fields };
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

function readEnv(env: unknown): Record<string, string> {
  if (env === undefined || env === null) return {};
  if (!isPlainObject(env)) throw new ValidationError('invalid env', [{ path: 'env', message: 'must be an object of NAME → value' }]);
  const bad = Object.entries(env).filter(([, v]) => typeof v !== 'string');
  if (bad.length) throw new ValidationError('invalid env', bad.map(([k]) => ({ path: `env.${k}`, message: 'must be a string' })));
  return env as Record<string, string>;
}

function checkName(name: string, at: DocPath, problems: Problems): boolean {
  if (!name.trim()) problems.add(at, 'a name must not be empty');
  else if (name !== name.trim()) problems.add(at, 'a name must not start or end with spaces');
  else if (name.length > 200) problems.add(at, 'a name has at most 200 characters');
  else return true;
  return false;
}

/** The name a webhook endpoint has in a document: its description, else one derived from its URL. */
function webhookName(w: Pick<EndpointRow, 'description' | 'url'>): string {
  const d = w.description?.trim();
  if (d) return d.slice(0, 200);
  let s = w.url;
  try {
    const u = new URL(w.url);
    s = `${u.host}${u.pathname}`;
  } catch {
    // as stored
  }
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 200) || 'webhook'
  );
}

function uniqueIds(m: Map<string, { id: string }[]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, rows] of m) if (rows.length === 1) out.set(name, rows[0]!.id);
  return out;
}

/** Deterministic `${NAME}`s: upper snake case of the parts, `_2`, `_3`… when two would collide. */
class EnvNames {
  private readonly used = new Set<string>();

  take(parts: string[]): string {
    const base = parts
      .map((p) =>
        p
          .toUpperCase()
          .replace(/[^A-Z0-9]+/g, '_')
          .replace(/^_+|_+$/g, ''),
      )
      .filter(Boolean)
      .join('_');
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  all(): string[] {
    return [...this.used].sort(compareText);
  }
}

function getAt(o: unknown, segs: readonly string[]): unknown {
  let cur = o;
  for (const s of segs) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[s];
  }
  return cur;
}

function setAt(o: unknown, segs: readonly string[], value: unknown): void {
  let cur = o as Record<string, unknown>;
  for (const s of segs.slice(0, -1)) cur = cur[s] as Record<string, unknown>;
  cur[segs[segs.length - 1]!] = value;
}

/** A config with each present secret replaced by a SecretValue (`changed`: the paths that differ; null for the stored side). */
function maskConfig(driver: string, config: unknown, changed: Set<string> | null): unknown {
  const copy = structuredClone(config ?? {});
  for (const segs of secretFieldPaths(driverSecretPaths(driver), config)) setAt(copy, segs, new SecretValue(changed?.has(segs.join('.')) ?? false));
  return copy;
}

function authView(field: ParamsField, params: StoredParams, changed: Set<string> | null): Record<string, unknown> {
  const secrets = SECRET_FIELDS[TYPE_OF_FIELD[field]];
  const view: Record<string, unknown> = {};
  for (const k of AUTH_PARAMS[field]) {
    const v = params[k] ?? null;
    view[k] = secrets.includes(k) && v !== null && v !== '' ? new SecretValue(changed?.has(k) ?? false) : v;
  }
  return { [field]: view };
}

function scheduleView(p: Pick<PipelineRow, 'scheduleCron' | 'scheduleTimezone' | 'scheduleEvery' | 'scheduleUnit'>): ScheduleView {
  if (p.scheduleCron) return { cron: p.scheduleCron, timezone: p.scheduleTimezone || 'UTC' };
  if (p.scheduleEvery != null && p.scheduleUnit) return { every: p.scheduleEvery, unit: p.scheduleUnit as ScheduleUnit };
  return null;
}

function streamView(s: Omit<DesiredStream, 'name'> | ConfiguredStream, keepKey = false): Record<string, unknown> {
  return {
    fields: s.fields ?? null,
    syncMode: s.syncMode,
    cursorField: s.cursorField ?? null,
    primaryKey: keepKey ? KEEP : (s.primaryKey ?? null),
    destinationName: s.destinationName ?? null,
    writeMode: s.writeMode ?? null,
  };
}

function pipelineView(p: PipelineRow, current: Current) {
  const streams = new Map<string, unknown>();
  for (const s of p.streams as unknown as ConfiguredStream[]) streams.set(s.name, streamView(s));
  return {
    source: current.names.connectors.get(p.sourceId) ?? '',
    destination: current.names.connectors.get(p.destinationId) ?? '',
    mapping: p.mappingId ? (current.names.mappings.get(p.mappingId) ?? null) : null,
    writeMode: p.writeMode as WriteMode,
    streams: streams as Map<string, unknown> | typeof KEEP,
    batchSize: p.batchSize,
    failureThreshold: p.failureThreshold,
    maxAttempts: p.maxAttempts,
    retryBackoffMs: p.retryBackoffMs,
    trigger: p.trigger,
    schedule: scheduleView(p),
    enabled: p.enabled,
    allowParallelRuns: p.allowParallelRuns,
    concurrencyPolicy: p.concurrencyPolicy,
    catchUp: p.catchUp,
    executionTimeoutMs: p.executionTimeoutMs,
    autoStopAfterFailures: p.autoStopAfterFailures,
  };
}

function desiredPipelineView(d: DesiredPipeline): ReturnType<typeof pipelineView> {
  let streams: Map<string, unknown> | typeof KEEP = KEEP;
  if (d.streams) {
    streams = new Map();
    for (const s of d.streams) streams.set(s.name, streamView(s, s.primaryKey === undefined));
  }
  return {
    source: d.source,
    destination: d.destination,
    mapping: d.mapping,
    writeMode: d.writeMode,
    streams,
    ...runSettings(d),
  };
}

/** A declared pipeline's settings besides its connectors, mapping, write mode and streams (in the document's key order). */
function runSettings(d: DesiredPipeline) {
  return {
    batchSize: d.batchSize,
    failureThreshold: d.failureThreshold,
    maxAttempts: d.maxAttempts,
    retryBackoffMs: d.retryBackoffMs,
    trigger: d.trigger,
    schedule: d.schedule,
    enabled: d.enabled,
    allowParallelRuns: d.allowParallelRuns,
    concurrencyPolicy: d.concurrencyPolicy,
    catchUp: d.catchUp,
    executionTimeoutMs: d.executionTimeoutMs,
    autoStopAfterFailures: d.autoStopAfterFailures,
  };
}

function webhookView(w: EndpointRow, current: Current) {
  return {
    url: w.url,
    eventTypes: [...new Set(w.eventTypes)].sort(compareText),
    // Ids of pipelines deleted since match nothing: not part of the document.
    pipelines: [...new Set(w.pipelineIds.map((id) => current.names.pipelines.get(id)).filter((n): n is string => n !== undefined))].sort(compareText),
    enabled: w.enabled,
  };
}

/** What a stream of the document becomes in create / update (an omitted primary key: the stored one, else the source's). */
function streamInput(s: DesiredStream, stored: ConfiguredStream | null): StreamInput {
  return {
    name: s.name,
    fields: s.fields,
    syncMode: s.syncMode,
    cursorField: s.cursorField,
    primaryKey: s.primaryKey === undefined ? (stored?.primaryKey ?? null) : s.primaryKey,
    destinationName: s.destinationName,
    writeMode: s.writeMode,
  };
}

type Seg = string | number | { key: string };

function deepEqual(a: unknown, b: unknown): boolean {
  if (b === KEEP || a === KEEP) return true;
  if (a instanceof SecretValue || b instanceof SecretValue) return a instanceof SecretValue && b instanceof SecretValue && !b.changed && !a.changed;
  if (a === b) return true;
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of b) if (!a.has(k) || !deepEqual(a.get(k), v)) return false;
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!deepEqual(a[k] ?? null, b[k] ?? null)) return false;
    return true;
  }
  return false;
}

/** Field-level differences of two comparable views (secrets as SecretValue, unmanaged fields as KEEP). */
function diffInto(before: unknown, after: unknown, path: Seg[], out: ConfigFieldChange[]): void {
  if (after === KEEP) return;
  if (after instanceof SecretValue || before instanceof SecretValue) {
    if (after instanceof SecretValue && before instanceof SecretValue && !after.changed) return;
    out.push({ path: formatPath(path), before: null, after: null, secret: true });
    return;
  }
  if (after instanceof Map && before instanceof Map) {
    const keys = [...after.keys(), ...[...before.keys()].filter((k) => !after.has(k))];
    for (const k of keys) diffInto(before.get(k), after.get(k), [...path, { key: String(k) }], out);
    return;
  }
  if (isPlainObject(after) && isPlainObject(before)) {
    const keys = [...Object.keys(after), ...Object.keys(before).filter((k) => !(k in after))];
    for (const k of keys) diffInto(before[k], after[k], [...path, k], out);
    return;
  }
  if (deepEqual(before ?? null, after ?? null)) return;
  out.push({ path: formatPath(path), before: render(before), after: render(after), secret: false });
}

/** JSON text of a view value; secrets as "(secret)", absent as null. */
function render(v: unknown): string | null {
  if (v === undefined || v === null || v === KEEP) return null;
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof SecretValue) return '(secret)';
    if (x instanceof Map) return Object.fromEntries(x);
    if (x === KEEP) return undefined;
    return x;
  });
}

function planText(steps: Step[]): string {
  const lines: string[] = [];
  const count = { CREATE: 0, UPDATE: 0, DELETE: 0, UNCHANGED: 0 };
  for (const s of steps) {
    count[s.kind]++;
    if (s.kind === 'CREATE') lines.push(`+ ${s.address}`);
    else if (s.kind === 'DELETE') lines.push(`- ${s.address}`);
    else if (s.kind === 'UPDATE') {
      for (const f of s.fields) {
        const at = f.path.startsWith('[') ? `${s.address}${f.path}` : `${s.address}.${f.path}`;
        lines.push(f.secret ? `~ ${at}: (secret changed)` : `~ ${at}: ${f.before ?? '(none)'} → ${f.after ?? '(none)'}`);
      }
    }
  }
  if (!count.CREATE && !count.UPDATE && !count.DELETE) return 'no changes\n';
  lines.push('', `${count.CREATE} to create, ${count.UPDATE} to update, ${count.DELETE} to delete, ${count.UNCHANGED} unchanged`);
  return `${lines.join('\n')}\n`;
}

/** Service field names as document keys, per section. */
const RENAMES: Record<ConfigSection, Record<string, DocPath>> = {
  authentications: { input: [] },
  connectors: { authenticationId: ['authentication'], role: ['driver'] },
  mappings: {},
  pipelines: { sourceId: ['source'], destinationId: ['destination'], mappingId: ['mapping'] },
  webhooks: { pipelineIds: ['pipelines'], description: [] },
};

/** The error of a failed apply step: what failed, at which lines, and what was applied before. */
function failure(err: unknown, step: Step, label: string, applied: string[], doc: ParsedYaml): unknown {
  const before = applied.length ? `; applied before the failure: ${applied.join(', ')}` : '; nothing was applied';
  const what = `${label} failed`;
  if (err instanceof ValidationError) {
    const problems = new Problems();
    problems.addServiceError(err, step.kind === 'DELETE' ? [] : [step.section, step.name], RENAMES[step.section]);
    return new ValidationError(`${what}: ${err.message.split(':')[0]}${before}`, problems.fieldErrors(doc));
  }
  if (err instanceof InUseError) return new InUseError(`${what}: ${err.message}${before}`, err.usedBy);
  if (err instanceof ConflictError) return new ConflictError(`${what}: ${err.message}${before}`, err.currentVersion);
  if (err instanceof NotFoundError) return new ConflictError(`${what}: ${err.message} (changed while applying)${before}`);
  return err;
}
