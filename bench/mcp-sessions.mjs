// @ts-check
// The agent's side of the MCP proxy bench: raw Streamable HTTP exchanges (what the SDK's client sends,
// without its per-call bookkeeping in the load generator's event loop), for the session revisions
// (`initialize`, `Mcp-Session-Id`) and the stateless 2026-07-28 one.

/** The session revision the bench asks for (the newest with `initialize`); the server may answer an older one. */
export const sessionRevision = '2025-11-25';
export const statelessRevision = '2026-07-28';

/** The `_meta` a 2026-07-28 request carries instead of a session. */
const statelessMeta = {
  'io.modelcontextprotocol/protocolVersion': statelessRevision,
  'io.modelcontextprotocol/clientInfo': { name: 'bench-agent', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

/** The text every `echo` call sends and must get back. */
export const echoText = 'bench echo 0123456789';

/**
 * A `tools/call` of `echo` with this JSON-RPC id (ids must differ between calls in flight on a session).
 * @param {number} id
 * @param {boolean} [stateless]
 */
export const echoCall = (id, stateless = false) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'echo', arguments: { text: echoText }, ...(stateless ? { _meta: statelessMeta } : {}) },
  });

/**
 * The headers of a request on a session (or, without `sessionId`, of a stateless `tools/call` of echo).
 * @param {{ key?: string, sessionId?: string, version?: string }} options
 * @returns {Record<string, string>}
 */
export const mcpHeaders = ({ key, sessionId, version }) => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  ...(key ? { authorization: `Bearer ${key}` } : {}),
  ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
  ...(version ? { 'mcp-protocol-version': version } : {}),
  ...(!sessionId && version === statelessRevision ? { 'mcp-method': 'tools/call', 'mcp-name': 'echo' } : {}),
});

/**
 * The JSON-RPC message answering request `id`, from a JSON body or an SSE stream's `data:` lines.
 * @param {string} text
 * @param {number} id
 */
const answerOf = (text, id) => {
  const messages = text.trimStart().startsWith('{')
    ? [JSON.parse(text)]
    : text
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .filter((data) => data.startsWith('{'))
        .map((data) => JSON.parse(data));
  const answer = messages.find((m) => m.id === id);
  if (!answer) throw new Error(`no answer to request ${id} in: ${text.slice(0, 300)}`);
  if (answer.error) throw new Error(`request ${id} failed: ${JSON.stringify(answer.error).slice(0, 300)}`);
  return answer.result;
};

/**
 * One JSON-RPC request (or, without `id`, a notification) and its result.
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {{ method: string, params?: unknown, id?: number }} message
 */
export const rpc = async (url, headers, { method, params, id }) => {
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      method,
      ...(params ? { params } : {}),
      ...(id === undefined ? {} : { id }),
    }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} answered ${response.status}: ${text.slice(0, 300)}`);
  return { result: id === undefined ? undefined : answerOf(text, id), response };
};

/**
 * A session: `initialize`, `notifications/initialized`, and (`listTools`) `tools/list`, as clients do
 * before their first call (the proxy pins the tool definitions it sees listed).
 * @param {string} url
 * @param {{ key?: string, listTools?: boolean }} options
 * @returns {Promise<{ sessionId: string, version: string }>}
 */
export const openSession = async (url, { key, listTools = false }) => {
  const { result, response } = await rpc(url, mcpHeaders({ key }), {
    method: 'initialize',
    id: 0,
    params: {
      protocolVersion: sessionRevision,
      capabilities: {},
      clientInfo: { name: 'bench-agent', version: '1.0.0' },
    },
  });
  const sessionId = response.headers.get('mcp-session-id');
  if (!sessionId) throw new Error('initialize answered without an Mcp-Session-Id');
  const version = String(result.protocolVersion);
  const headers = mcpHeaders({ key, sessionId, version });
  await rpc(url, headers, { method: 'notifications/initialized' });
  if (listTools) {
    const { result: listed } = await rpc(url, headers, { method: 'tools/list', id: 1 });
    if (!listed.tools.some((/** @type {{ name: string }} */ t) => t.name === 'echo'))
      throw new Error(`tools/list lacks echo: ${JSON.stringify(listed).slice(0, 300)}`);
  }
  return { sessionId, version };
};

/**
 * One `tools/call` of echo, checked.
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {number} id
 */
export const callEcho = async (url, headers, id) => {
  const { result } = await rpc(url, headers, {
    method: 'tools/call',
    id,
    params: JSON.parse(echoCall(id, headers['mcp-protocol-version'] === statelessRevision)).params,
  });
  if (result?.content?.[0]?.text !== echoText) throw new Error(`echo answered ${JSON.stringify(result)}`);
};

/**
 * Ends a session (`DELETE`).
 * @param {string} url
 * @param {Record<string, string>} headers
 */
export const closeSession = async (url, headers) => {
  const response = await fetch(url, { method: 'DELETE', headers });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`DELETE answered ${response.status}`);
};
