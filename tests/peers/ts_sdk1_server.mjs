// A 2025-era MCP server written in a few lines on the TypeScript SDK 1.x, as
// most servers in the wild are. Its `*_unrelated` tool handlers ask the
// client for input with `createMessage`, `elicitInput` and `listRoots`
// WITHOUT a related request id, so the SDK sends those requests on the
// session's standalone GET stream, not on the call's own stream; its
// `*_related` ones ask through the handler's `extra.sendRequest`, which goes
// on the call's own stream (as rmcp and the Python SDK always do).
// It takes resource subscriptions (`demo://sdk1/doc`), and its `touch` tool
// tells every session subscribed to a URI that it changed, on that
// session's standalone stream, as a server watching files would.
//
// Usage: node tests/peers/ts_sdk1_server.mjs <port>
// Ready: stderr gets "ts_sdk1_server ready on http://127.0.0.1:<port>/mcp".
// Loopback only; stateful sessions (Mcp-Session-Id).

import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  isInitializeRequest,
  CreateMessageResultSchema,
  ElicitResultSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const port = Number(process.argv[2] ?? 0);

// The sessions (their low-level servers) subscribed to each URI.
const subscribers = new Map();

function newServer() {
  const server = new McpServer(
    { name: 'ts-sdk1-server', version: '1.0.0' },
    { capabilities: { logging: {}, resources: { subscribe: true } } },
  );
  const text = (value) => ({ content: [{ type: 'text', text: value }] });
  server.registerResource('doc', 'demo://sdk1/doc', { mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'a document' }],
  }));
  server.server.setRequestHandler(SubscribeRequestSchema, async ({ params }) => {
    if (!subscribers.has(params.uri)) subscribers.set(params.uri, new Set());
    subscribers.get(params.uri).add(server.server);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async ({ params }) => {
    subscribers.get(params.uri)?.delete(server.server);
    return {};
  });
  server.registerTool(
    'touch',
    { description: 'Tells every session subscribed to the URI that it changed', inputSchema: { uri: z.string() } },
    async ({ uri }) => {
      let told = 0;
      for (const subscriber of subscribers.get(uri) ?? []) {
        try {
          await subscriber.sendResourceUpdated({ uri });
          told += 1;
        } catch {
          subscribers.get(uri).delete(subscriber); // its session is gone
        }
      }
      return text(`touched ${uri}: ${told}`);
    },
  );
  server.registerTool(
    'sample_unrelated',
    { description: 'Asks the client to sample, outside this request', inputSchema: { prompt: z.string() } },
    async ({ prompt }) => {
      const result = await server.server.createMessage({
        messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
        maxTokens: 20,
      });
      return text(`sampled: ${result.content.text}`);
    },
  );
  server.registerTool(
    'elicit_unrelated',
    { description: 'Asks the client for input, outside this request', inputSchema: {} },
    async () => {
      const result = await server.server.elicitInput({
        message: 'Your name?',
        requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      });
      return text(`elicited: ${result.action} ${JSON.stringify(result.content ?? {})}`);
    },
  );
  server.registerTool(
    'roots_unrelated',
    { description: 'Lists the client roots, outside this request', inputSchema: {} },
    async () => {
      const result = await server.server.listRoots();
      return text(`roots: ${result.roots.map((r) => r.uri).join(',')}`);
    },
  );
  server.registerTool(
    'sample_related',
    { description: 'Asks the client to sample, on this request', inputSchema: { prompt: z.string() } },
    async ({ prompt }, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 20 },
        },
        CreateMessageResultSchema,
      );
      return text(`sampled: ${result.content.text}`);
    },
  );
  server.registerTool(
    'elicit_related',
    { description: 'Asks the client for input, on this request', inputSchema: {} },
    async (_args, extra) => {
      const result = await extra.sendRequest(
        {
          method: 'elicitation/create',
          params: {
            message: 'Your name?',
            requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
          },
        },
        ElicitResultSchema,
      );
      return text(`elicited: ${result.action} ${JSON.stringify(result.content ?? {})}`);
    },
  );
  server.registerTool(
    'two_rounds_related',
    { description: 'Asks the client twice, on this request', inputSchema: {} },
    async (_args, extra) => {
      const ask = (message) =>
        extra.sendRequest(
          {
            method: 'elicitation/create',
            params: { message, requestedSchema: { type: 'object', properties: { name: { type: 'string' } } } },
          },
          ElicitResultSchema,
        );
      const first = await ask('First?');
      const second = await ask('Second?');
      return text(`rounds: ${first.content?.name} ${second.content?.name}`);
    },
  );
  server.registerTool(
    'log_levels',
    { description: 'Logs "an info" at info and "an error" at error, in that order', inputSchema: {} },
    async (_args, extra) => {
      await server.server.sendLoggingMessage({ level: 'info', data: 'an info' }, extra.sessionId);
      await server.server.sendLoggingMessage({ level: 'error', data: 'an error' }, extra.sessionId);
      return text('logged');
    },
  );
  server.registerTool(
    'log_unrelated',
    { description: 'Sends a log message outside this request, then answers', inputSchema: { text: z.string() } },
    async ({ text: message }) => {
      await server.server.sendLoggingMessage({ level: 'info', data: message });
      return text('logged');
    },
  );
  return server;
}

const transports = new Map();

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString('utf8');
  return raw ? JSON.parse(raw) : undefined;
}

const http = createServer(async (req, res) => {
  try {
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    const sessionId = req.headers['mcp-session-id'];
    let transport = sessionId ? transports.get(sessionId) : undefined;
    if (!transport && req.method === 'POST' && isInitializeRequest(body)) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
      await newServer().connect(transport);
    }
    if (!transport) {
      res.writeHead(sessionId ? 404 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad session' } }));
      return;
    }
    await transport.handleRequest(req, res, body);
  } catch (e) {
    process.stderr.write(`ts_sdk1_server: ${e?.stack ?? e}\n`);
    if (!res.headersSent) res.writeHead(500).end();
  }
});

http.listen(port, '127.0.0.1', () => {
  process.stderr.write(`ts_sdk1_server ready on http://127.0.0.1:${http.address().port}/mcp\n`);
});
