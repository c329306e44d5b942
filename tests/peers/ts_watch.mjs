// A long-lived TypeScript SDK client driven line by line, for Switchboard's
// live-catalog tests: the SDK's own list-changed handler (ClientOptions
// .listChanged) is what observes notifications.
//
// Usage: node tests/peers/ts_watch.mjs <url> <legacy|modern>
//   legacy: @modelcontextprotocol/sdk 1.x (2025 handshake, GET stream)
//   modern: @modelcontextprotocol/client 2.x pinned to 2026-07-28
//           (the SDK opens subscriptions/listen itself for listChanged)
// After connecting it prints {"ready": true, "protocolVersion", "tools"}.
// Then, one command per stdin line, one JSON line out per command:
//   call <name> <arguments json>  -> {"call": name, "isError", "text"} | {"call": name, "error": {...}}
//   wait-changed <timeout ms>     -> {"changed": true, "tools": [...], "waitedMs"} once the
//                                    handler has fired since the last wait (or {"changed": false})
//   tools                         -> {"tools": [...]}
//   quit                          -> closes and exits 0
import readline from 'node:readline';

const [url, mode] = process.argv.slice(2);
const info = { name: 'switchboard-test-ts-watch', version: '0.0.0' };
const out = (value) => process.stdout.write(JSON.stringify(value) + '\n');

// Every list the handler delivered that no `wait-changed` has taken yet.
let changes = [];
let wake = null;
const listChanged = {
  tools: {
    debounceMs: 0,
    onChanged: (error, tools) => {
      changes.push(error ? { error: String(error) } : { tools: tools.map((t) => t.name) });
      if (wake) wake();
    },
  },
};

async function connect() {
  if (mode === 'legacy') {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const client = new Client(info, { listChanged });
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    return { client, transport, version: () => transport.protocolVersion };
  }
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const client = new Client(info, { listChanged, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport, version: () => client.getNegotiatedProtocolVersion() };
}

async function allTools(client) {
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor === undefined ? undefined : { cursor });
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return tools.map((t) => t.name);
}

async function main() {
  const { client, version } = await connect();
  out({ ready: true, protocolVersion: version(), tools: await allTools(client) });
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, ...rest] = line.trim().split(' ');
    if (command === 'call') {
      const [name, ...args] = rest;
      try {
        const r = await client.callTool({ name, arguments: JSON.parse(args.join(' ') || '{}') });
        const text = (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
        out({ call: name, isError: r.isError === true, text });
      } catch (e) {
        out({ call: name, error: { code: e.code, message: String(e.message ?? e) } });
      }
    } else if (command === 'wait-changed') {
      const started = Date.now();
      const timeout = Number(rest[0] ?? 10000);
      if (changes.length === 0) {
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, timeout);
        });
        wake = null;
      }
      const change = changes.shift();
      out(change ? { changed: true, ...change, waitedMs: Date.now() - started } : { changed: false });
    } else if (command === 'tools') {
      out({ tools: await allTools(client) });
    } else if (command === 'quit') {
      break;
    }
  }
  await client.close();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`ts_watch: ${e?.stack ?? e}\n`);
  process.exit(1);
});
