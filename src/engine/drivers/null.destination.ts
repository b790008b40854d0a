import {
  DriverError,
  type Catalog,
  type CheckResult,
  type DataRecord,
  type DestinationDriver,
  type JsonSchema,
  type StreamWriter,
  type WriteMode,
  type WriteResult,
  type WriterOptions,
} from './types.js';

/**
 * Null destination: accepts every record and discards it, to measure engine overhead.
 *
 * Contract: every write mode is accepted (no primary key needed); `writeBatch` resolves at once
 * with `written` = the batch size and `bytes` = an estimate (the JSON size of up to 8 evenly
 * spaced sample records, scaled to the batch; 0 with `countBytes: false`). Nothing is kept, so
 * commit and abort have nothing to do.
 */

export interface NullDestinationConfig {
  countBytes?: boolean;
}

export const nullConfigSchema: JsonSchema = {
  type: 'object',
  title: 'Null (discard)',
  additionalProperties: false,
  properties: {
    countBytes: {
      type: 'boolean',
      default: true,
      title: 'Estimate bytes',
      description: 'Report an estimated byte count (JSON size of a few sampled records per batch). Off: bytes are reported as 0.',
    },
  },
};

export const docs = `# Null (destination)

Discards every record. Use it to benchmark a source and the engine without a real destination.

\`\`\`json
{ "countBytes": true }
\`\`\`

- Accepts APPEND, OVERWRITE, UPSERT and MERGE; keeps nothing.
- Records written = records received. Bytes are an estimate: the JSON size of up to 8 sampled
  records per batch, scaled to the batch (\`countBytes: false\` reports 0).
`;

const SUPPORTED_MODES: WriteMode[] = ['APPEND', 'OVERWRITE', 'UPSERT', 'MERGE'];
const SAMPLES = 8;

/** Estimated JSON size of a batch from up to `SAMPLES` evenly spaced records. */
export function estimateBytes(records: DataRecord[]): number {
  const n = records.length;
  if (n === 0) return 0;
  const k = Math.min(SAMPLES, n);
  let total = 0;
  for (let i = 0; i < k; i++) {
    const rec = records[Math.floor((i * n) / k)];
    let size = 0;
    try {
      size = (JSON.stringify(rec) ?? '').length + 1;
    } catch {
      size = 0; // unserializable: counts as nothing
    }
    total += size;
  }
  return Math.round((total / k) * n);
}

class NullWriter implements StreamWriter {
  private done = false;

  constructor(private readonly countBytes: boolean) {}

  async writeBatch(records: DataRecord[]): Promise<WriteResult> {
    if (this.done) throw new DriverError('Null destination: writeBatch called after commit/abort');
    return { written: records.length, bytes: this.countBytes ? estimateBytes(records) : 0, rejected: [] };
  }

  async commit(): Promise<void> {
    this.done = true;
  }

  async abort(): Promise<void> {
    this.done = true;
  }
}

async function openWriter(config: NullDestinationConfig | undefined, options: WriterOptions): Promise<StreamWriter> {
  if (!SUPPORTED_MODES.includes(options.writeMode)) {
    throw new DriverError(`Null destination: unsupported write mode ${options.writeMode} (supported: ${SUPPORTED_MODES.join(', ')})`);
  }
  return new NullWriter(config?.countBytes ?? true);
}

async function check(): Promise<CheckResult> {
  return { ok: true, message: 'The null destination accepts and discards everything' };
}

async function discover(): Promise<Catalog> {
  return { streams: [] };
}

export const nullDestination: DestinationDriver<NullDestinationConfig> = {
  name: 'null',
  role: 'DESTINATION',
  title: 'Null (discard)',
  description: 'Accepts and discards records; for benchmarking sources and engine overhead.',
  docs,
  configSchema: nullConfigSchema,
  supportedWriteModes: SUPPORTED_MODES,
  check,
  discover,
  openWriter,
};

export default nullDestination;
