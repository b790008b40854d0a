/**
 * GraphiQL in a real browser (Debian's Chromium driven by playwright-core), offline: the page
 * must render, run a query and stream subscriptions with every request going to the server
 * itself (or data:/blob: URLs the page makes). Also proves the README's recipe: a subscription
 * in one browser tab keeps streaming while another tab runs a mutation.
 *
 * Needs /usr/bin/chromium (or SLUICE_CHROMIUM); skipped with a note when absent, except in CI
 * where `.ci/run` installs it and a missing browser is a failure. Screenshots: .tmp/graphiql-*.png.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const SHOTS = path.resolve('.tmp');

if (!haveChromium) {
  if (process.env.CI) throw new Error(`the browser suite needs Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium)`);
  console.warn(`[skipped] GraphiQL browser suite: no Chromium at ${CHROMIUM} (apt-get install chromium, or set SLUICE_CHROMIUM)`);
}

describe.skipIf(!haveChromium)('GraphiQL in Chromium, offline', () => {
  let server: TestServer;
  let context: BrowserContext;
  let origin: string;
  const requested: string[] = [];
  let pipelineId: string;

  const connector = async (name: string, driver: string, config: unknown) =>
    (await server.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ... on CreateConnectorPayload { connector { id } } ... on Error { code message } } }`, {
      i: { name, driver, config },
    })).createConnector.connector.id as string;

  beforeAll(async () => {
    server = await startTestServer();
    origin = new URL(server.url).origin;
    const sourceId = await connector('ticks', 'generator', { count: 6000, rate: 1500, shape: { fields: 2 } });
    const destinationId = await connector('sink', 'null', {});
    const created = await server.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ... on CreatePipelinePayload { pipeline { id } } ... on Error { code message } } }`, {
      i: { name: 'ticks → sink', sourceId, destinationId },
    });
    pipelineId = created.createPipeline.pipeline.id;
    fs.mkdirSync(SHOTS, { recursive: true });
    context = await chromium.launchPersistentContext(tempDir('sluice-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 900 },
    });
    context.on('request', (r) => void requested.push(r.url()));
    context.on('page', (p) => p.on('websocket', (ws) => void requested.push(ws.url())));
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await server?.stop();
  });

  /** Opens GraphiQL in a new browser tab with `query` in the editor. */
  async function open(query: string): Promise<Page> {
    const page = await context.newPage();
    page.on('websocket', (ws) => void requested.push(ws.url()));
    await page.goto(`${origin}/graphql?query=${encodeURIComponent(query)}`);
    await page.locator('.graphiql-execute-button').waitFor({ state: 'visible', timeout: 30_000 });
    // The editor holds the query once Monaco has loaded it.
    await expect.poll(async () => nbsp(await page.locator('.graphiql-query-editor').innerText()), { timeout: 30_000 }).toContain(query.split(/[({]/)[0]!.trim());
    return page;
  }

  /** Monaco renders spaces as non-breaking ones. */
  const nbsp = (text: string) => text.replace(/\u00a0/g, ' ');
  const run = (page: Page) => page.locator('.graphiql-execute-button').click();
  /**
   * The result pane's text as JSON (null while it is empty or partly rendered). Monaco wraps
   * long lines: a line break and the indentation after it are layout, never part of a value here.
   */
  const result = async (page: Page): Promise<any> => {
    const text = nbsp(await page.locator('.graphiql-response').innerText()).replace(/\n\s*/g, '');
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  };

  it('renders with no outside address and runs a query', async () => {
    const page = await open('query Pipelines { pipelines(first: 5) { nodes { name state } } }');
    await run(page);
    await expect.poll(async () => (await result(page))?.data?.pipelines?.nodes?.[0], { timeout: 20_000 }).toEqual({ name: 'ticks → sink', state: 'STOP' });
    await page.screenshot({ path: path.join(SHOTS, 'graphiql-query.png') });
    const html = await page.content();
    expect(html).not.toMatch(/unpkg\.com|jsdelivr|githubusercontent|cdn\./);
  });

  it('streams a subscription in one tab while a mutation runs in another, then a job’s live progress', async () => {
    // Tab 1: watch the pipeline.
    const watch = await open(`subscription Watch { pipelineStateChanged(pipelineId: "${pipelineId}") { action previousState state } }`);
    await run(watch);
    // Tab 2: start it (GraphiQL's in-page tabs share one execution: a second browser tab is what keeps tab 1 streaming).
    const act = await open(`mutation Start { startPipeline(input: { id: "${pipelineId}" }) { ... on StartPipelinePayload { pipeline { state currentJob { id } } } ... on Error { code message } } }`);
    await run(act);
    await expect.poll(async () => (await result(act))?.data?.startPipeline?.pipeline?.currentJob?.id, { timeout: 20_000 }).toBeTruthy();
    const jobId: string = (await result(act)).data.startPipeline.pipeline.currentJob.id;
    await expect.poll(async () => (await result(watch))?.data?.pipelineStateChanged, { timeout: 20_000 }).toEqual({ action: 'START', previousState: 'STOP', state: 'INIT' });
    await watch.screenshot({ path: path.join(SHOTS, 'graphiql-subscription-tab.png') });

    // Tab 3: the job's progress, live, to its final message.
    const progress = await open(`subscription Progress { jobProgress(jobId: "${jobId}") { status recordsRead recordsWritten final } }`);
    await run(progress);
    const seen: number[] = [];
    let last: any = null;
    for (const deadline = Date.now() + 40_000; Date.now() < deadline; ) {
      const r = (await result(progress))?.data?.jobProgress;
      if (r) {
        last = r;
        if (!seen.includes(r.recordsRead)) seen.push(r.recordsRead);
        if (seen.length === 2) await progress.screenshot({ path: path.join(SHOTS, 'graphiql-job-progress.png') });
        if (r.final) break;
      }
      await progress.waitForTimeout(100);
    }
    expect(last).toEqual({ status: 'SUCCEEDED', recordsRead: 6000, recordsWritten: 6000, final: true });
    // Counters moved while the job ran: several intermediate values before the final one.
    expect(seen.filter((n) => n > 0 && n < 6000).length).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    await progress.screenshot({ path: path.join(SHOTS, 'graphiql-job-final.png') });
    // Tab 1 kept its subscription through all of it: the initial load's end reached it too.
    await expect.poll(async () => (await result(watch))?.data?.pipelineStateChanged, { timeout: 20_000 }).toEqual({ action: 'INITIAL_LOAD_COMPLETED', previousState: 'INIT', state: 'READY' });
  }, 120_000);

  it('asked nothing of any host but the server', () => {
    expect(requested.length).toBeGreaterThan(0);
    const outside = requested.filter((u) => !u.startsWith(origin) && !u.startsWith(origin.replace(/^http/, 'ws')) && !/^(data|blob):/.test(u));
    expect(outside).toEqual([]);
  });
});
