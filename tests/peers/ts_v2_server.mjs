// A 2026-07-28-only MCP server on the TypeScript SDK v2 (createMcpHandler,
// `legacy: 'reject'`), for what only that era does: resource updates on a
// `subscriptions/listen` stream that names the URIs (`resourceSubscriptions`).
// Its tool `touch` announces an update of the resource it names.
//
// Usage: node tests/peers/ts_v2_server.mjs <port>
// Ready: stderr gets "ts_v2_server ready on http://127.0.0.1:<port>/mcp". Loopback only.

import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { z } from 'zod';

const port = Number(process.argv[2] ?? 0);
const WATCHED = ['demo://watched/a', 'demo://watched/b'];

let handler;
const factory = () => {
  const server = new McpServer(
    { name: 'ts-v2-server', version: '1.0.0' },
    { capabilities: { resources: { subscribe: true, listChanged: true } } },
  );
  for (const uri of WATCHED) {
    server.registerResource(uri, uri, { mimeType: 'text/plain' }, async () => ({
      contents: [{ uri, mimeType: 'text/plain', text: `content of ${uri}` }],
    }));
  }
  server.registerTool(
    'touch',
    { description: 'Announces an update of a watched resource', inputSchema: z.object({ uri: z.string() }) },
    async ({ uri }) => {
      handler.notify.resourceUpdated(uri);
      return { content: [{ type: 'text', text: `touched ${uri}` }] };
    },
  );
  return server;
};
handler = createMcpHandler(factory, { legacy: 'reject' });

const http = createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks);
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers: req.headers,
      body,
    });
    const response = await handler.fetch(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) {
      const stream = Readable.fromWeb(response.body);
      req.on('close', () => stream.destroy());
      stream.pipe(res);
    } else {
      res.end();
    }
  } catch (e) {
    process.stderr.write(`ts_v2_server: ${e?.stack ?? e}\n`);
    if (!res.headersSent) res.writeHead(500).end();
  }
});

http.listen(port, '127.0.0.1', () => {
  process.stderr.write(`ts_v2_server ready on http://127.0.0.1:${http.address().port}/mcp\n`);
});
