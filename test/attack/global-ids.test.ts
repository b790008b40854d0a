/**
 * Malformed global ids through the real server: a mutation argument that is not an id Sluice
 * could have made (or names another type) is a typed VALIDATION_FAILED at its input path and
 * changes nothing; `node` / `nodes` answer null for a malformed id instead of failing the query.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('malformed global ids', () => {
  let s: TestServer;
  let pipelineId: string;
  let sourceId: string;

  beforeAll(async () => {
    s = await startTestServer();
    const c = async (name: string, driver: string, config: Record<string, unknown>) =>
      (await s.q(`mutation($i: CreateConnectorInput!) { createConnector(input: $i) { ... on CreateConnectorPayload { connector { id } } } }`, { i: { name, driver, config } }))
        .createConnector.connector.id as string;
    sourceId = await c('gen', 'generator', { count: 3 });
    const dest = await c('null', 'null', {});
    pipelineId = (
      await s.q(`mutation($i: CreatePipelineInput!) { createPipeline(input: $i) { ... on CreatePipelinePayload { pipeline { id } } } }`, {
        i: { name: 'p', sourceId, destinationId: dest },
      })
    ).createPipeline.pipeline.id;
  });
  afterAll(async () => s?.stop());

  const START = `mutation($id: ID!) { startPipeline(input: { id: $id }) {
    __typename ... on ValidationError { code message fieldErrors { path message } } ... on StartPipelinePayload { pipeline { state } } } }`;

  it.each([
    ['not base64 of Type:id', 'abc', 'not a valid id of a Pipeline'],
    ['a Pipeline id without a UUID', Buffer.from('Pipeline:42').toString('base64'), 'not a valid id of a Pipeline'],
    ['empty', '', 'not a valid id of a Pipeline'],
  ])('startPipeline with %s: VALIDATION_FAILED at input.id, nothing changed', async (_what, id, message) => {
    const r = await s.gql(START, { id });
    expect(r.errors).toBeUndefined();
    expect(r.data.startPipeline).toEqual({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', message: `invalid input: input.id: ${message}`, fieldErrors: [{ path: 'input.id', message }] });
    expect((await s.q(`query($id: ID!) { pipeline(id: $id) { state } }`, { id: pipelineId })).pipeline.state).toBe('STOP');
  });

  it('an id of another type is named as such', async () => {
    const r = await s.gql(START, { id: sourceId });
    expect(r.data.startPipeline.fieldErrors).toEqual([{ path: 'input.id', message: 'is the id of a Connector, not of a Pipeline' }]);
  });

  it('node and nodes answer null for a malformed id, the rest as usual', async () => {
    const r = await s.gql(`query($ids: [ID!]!, $bad: ID!) { nodes(ids: $ids) { __typename id } node(id: $bad) { id } }`, { ids: [pipelineId, 'abc', sourceId], bad: '%%%' });
    expect(r.errors).toBeUndefined();
    expect(r.data).toEqual({ nodes: [{ __typename: 'Pipeline', id: pipelineId }, null, { __typename: 'Connector', id: sourceId }], node: null });
  });
});
