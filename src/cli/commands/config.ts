/**
 * `sluice export` and `sluice apply`: configuration as code over GraphQL. `export` prints the
 * workspace's configuration as a YAML document (exportConfig); `apply` shows the plan of a
 * document against the server (planConfig) and, unless `--dry-run`, applies it (applyConfig).
 * Typed errors (a ValidationError with its field paths, …) are printed and exit 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ERROR_FIELDS, SluiceClient, unwrap, type ClientOptions } from '../client.js';
import { CliError } from '../errors.js';
import { addClientOptions } from './client-options.js';

interface ConfigPlan {
  text: string;
  hasChanges: boolean;
}

const withNewline = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);

async function exportConfig(options: ClientOptions & { out?: string }): Promise<void> {
  const client = new SluiceClient(options);
  const data = await client.request<{ exportConfig: { document: string } | null }>('query ExportConfig { exportConfig { document } }');
  const document = data.exportConfig?.document;
  if (typeof document !== 'string') throw new CliError('Sluice returned no document');
  if (!options.out || options.out === '-') {
    process.stdout.write(withNewline(document));
    return;
  }
  // Written next to the target, then renamed: an interrupted export never leaves half a file.
  const tmp = `${options.out}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, withNewline(document));
  fs.renameSync(tmp, options.out);
  console.error(`wrote ${options.out}`);
}

function readDocument(file: string): { document: string; fileName: string | undefined } {
  if (file === '-') return { document: fs.readFileSync(0, 'utf8'), fileName: undefined };
  try {
    return { document: fs.readFileSync(file, 'utf8'), fileName: path.basename(file) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${(err as Error).message}`, code === 'ENOENT' ? 2 : 1);
  }
}

/**
 * The values of the `${NAME}` references in the document, from this process's environment: only
 * the names the document references are sent; one left unset comes back as a ValidationError at its line.
 */
async function referencedEnv(document: string): Promise<Record<string, string>> {
  const { envReferences } = await import('../../modules/config/config.document.js');
  const env: Record<string, string> = {};
  for (const name of envReferences(document)) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

async function apply(options: ClientOptions & { file: string; dryRun?: boolean; prune?: boolean }): Promise<void> {
  const client = new SluiceClient(options);
  const { document, fileName } = readDocument(options.file);
  const prune = options.prune ?? false;
  const env = await referencedEnv(document);
  if (options.dryRun) {
    const data = await client.request<{ planConfig: { __typename: string } & ConfigPlan }>(
      `query PlanConfig($document: String!, $fileName: String, $prune: Boolean, $env: JSON) { planConfig(document: $document, fileName: $fileName, prune: $prune, env: $env) { ${ERROR_FIELDS} ... on ConfigPlan { text hasChanges } } }`,
      { document, fileName, prune, env },
    );
    const plan = unwrap(data.planConfig, 'ConfigPlan');
    process.stdout.write(withNewline(plan.text));
    if (plan.hasChanges) console.error('dry run: nothing was changed');
    return;
  }
  const data = await client.request<{ applyConfig: { __typename: string; plan: ConfigPlan; applied: boolean } }>(
    // The input object is spelled out so the query does not depend on the input type's name.
    `mutation ApplyConfig($document: String!, $fileName: String, $prune: Boolean, $env: JSON) { applyConfig(input: { document: $document, fileName: $fileName, prune: $prune, dryRun: false, env: $env }) { ${ERROR_FIELDS} ... on ApplyConfigPayload { plan { text hasChanges } applied } } }`,
    { document, fileName, prune, env },
  );
  const result = unwrap(data.applyConfig, 'ApplyConfigPayload');
  process.stdout.write(withNewline(result.plan.text));
  if (result.plan.hasChanges) console.error(result.applied ? 'applied' : 'not applied');
}

export function register(program: Command): void {
  addClientOptions(
    program
      .command('export')
      .description("print the workspace's configuration as YAML")
      .option('--out <file>', 'write it to this file instead of stdout'),
  ).action(exportConfig);
  addClientOptions(
    program
      .command('apply')
      .description('plan and apply a YAML configuration')
      .requiredOption('-f, --file <file>', 'the YAML document (`-`: stdin)')
      .option('--dry-run', 'print the plan only; change nothing')
      .option('--prune', 'also delete what the document does not mention'),
  ).action(apply);
}
