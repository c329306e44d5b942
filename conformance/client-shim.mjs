// The client under test for the conformance suite's client scenarios
// (`conformance client --command ...`): a real MCP client, alone or behind
// Switchboard.
//
// Usage (the suite appends the scenario server's URL and sets
// MCP_CONFORMANCE_SCENARIO, MCP_CONFORMANCE_PROTOCOL_VERSION and, for some
// scenarios, MCP_CONFORMANCE_CONTEXT):
//
//   node conformance/client-shim.mjs --client REVISION --via WAY <server-url>
//
//   --client 2025-11-25  @modelcontextprotocol/sdk 1.x (initialize handshake)
//   --client 2026-07-28  @modelcontextprotocol/client 2.x pinned to 2026-07-28
//   --via direct         the client talks to the scenario's server itself
//   --via servers        Switchboard starts with that server as its only
//                        upstream `up`; the client talks to /servers/up/mcp
//   --via mcp            the same, through the aggregated /mcp, where the
//                        upstream's names carry its prefix `up_`
//
// Through the gateway, the scenario's server sees Switchboard as its client:
// every check the suite makes is then about what the gateway sends upstream,
// and a difference from `--via direct` with the same client is the gateway's.
//
// The gateway is $SWITCHBOARD (default $CARGO_TARGET_DIR/debug/switchboard,
// else target/debug/switchboard), started on 127.0.0.1:0 with a config file
// in a temporary directory; its address is read from its output, as
// conformance/run does. Its log goes to this process's stderr, which the
// suite keeps in the scenario's stderr.txt. Exit 0 when the scenario's
// operations ran, 1 otherwise (the suite judges the checks, not this code).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
// The clients are the pinned test peers (tests/peers/package.json), loaded
// with require so that both SDK majors resolve from there.
const peers = createRequire(join(root, 'tests', 'peers', 'package.json'));

const START_TIMEOUT_MS = 30_000; // the gateway printing its address, and /readyz
const UPSTREAM = 'up';

function parseArgs(argv) {
  const options = { client: undefined, via: undefined, url: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--client') options.client = argv[++i];
    else if (arg === '--via') options.via = argv[++i];
    else if (options.url === undefined && !arg.startsWith('--')) options.url = arg;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!['2025-11-25', '2026-07-28'].includes(options.client)) {
    throw new Error('--client must be 2025-11-25 or 2026-07-28');
  }
  if (!['direct', 'servers', 'mcp'].includes(options.via)) {
    throw new Error('--via must be direct, servers or mcp');
  }
  if (!options.url) throw new Error('no server URL (the suite appends it)');
  return options;
}

const log = (...args) => process.stderr.write(`[shim] ${args.join(' ')}\n`);

// --- the gateway -------------------------------------------------------------

async function startGateway(upstreamUrl) {
  const bin =
    process.env.SWITCHBOARD ??
    join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'switchboard');
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-shim-'));
  const config = join(dir, 'switchboard.yaml');
  writeFileSync(
    config,
    [
      'listen: "127.0.0.1:0"',
      'upstreams:',
      `  - name: ${UPSTREAM}`,
      `    url: ${JSON.stringify(upstreamUrl)}`,
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['serve', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
  });
  let exited = null;
  const exit = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  const address = new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk) => {
      const text = chunk.toString();
      process.stderr.write(text.replace(/^(?=.)/gm, '[gateway] '));
      buffered += text;
      const found = buffered.match(/listening on (http:\/\/[^/\s]+)\/mcp/);
      if (found) resolve(found[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    exit.then(() => reject(new Error(`gateway exited (${JSON.stringify(exited)}) before printing its address`)));
  });
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      const killed = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killed);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = await withDeadline(address, START_TIMEOUT_MS, 'the gateway printing its address');
    await waitReady(base);
    return { base, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// /readyz answers 200 once every upstream's first connection attempt has
// ended (connected or failed), so the client's first list is the upstream's.
async function waitReady(base) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${base}/readyz`);
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gateway not ready within ${START_TIMEOUT_MS} ms (${last})`);
}

// --- the client ----------------------------------------------------------------

// One interface over both SDK majors. `capabilities` are declared as given;
// `onElicit(params)` answers elicitation/create (2025: a request on the
// call's stream; 2026-07-28: the SDK's multi round-trip driver calls it for
// each inputRequest and retries the call itself).
async function connect(revision, url, { capabilities = {}, onElicit } = {}) {
  const info = { name: 'switchboard-conformance-shim', version: '1.0.0' };
  if (revision === '2025-11-25') {
    const { Client } = peers('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = peers('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const types = peers('@modelcontextprotocol/sdk/types.js');
    const client = new Client(info, { capabilities });
    if (onElicit) client.setRequestHandler(types.ElicitRequestSchema, (request) => onElicit(request.params));
    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    return {
      async listTools() {
        const tools = [];
        let cursor;
        do {
          const page = await client.listTools(cursor === undefined ? undefined : { cursor });
          tools.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        return tools;
      },
      callTool: (name, args) => client.callTool({ name, arguments: args }),
      listResources: async () => (await client.listResources()).resources,
      readResource: (uri) => client.readResource({ uri }),
      listPrompts: async () => (await client.listPrompts()).prompts,
      getPrompt: (name, args) => client.getPrompt({ name, arguments: args }),
      async close() {
        if (transport.sessionId) await transport.terminateSession().catch(() => {});
        await client.close();
      },
    };
  }
  const { Client, StreamableHTTPClientTransport } = peers('@modelcontextprotocol/client');
  const client = new Client(info, {
    capabilities,
    versionNegotiation: { mode: { pin: '2026-07-28' } },
  });
  if (onElicit) client.setRequestHandler('elicitation/create', (request) => onElicit(request.params));
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return {
    // v2 walks every page itself and caches the tools' schemas, which its
    // Mcp-Param-* header mirroring (SEP-2243) reads on each call.
    listTools: async () => (await client.listTools()).tools,
    callTool: (name, args) => client.callTool({ name, arguments: args }),
    listResources: async () => (await client.listResources()).resources,
    readResource: (uri) => client.readResource({ uri }),
    listPrompts: async () => (await client.listPrompts()).prompts,
    getPrompt: (name, args) => client.getPrompt({ name, arguments: args }),
    close: () => client.close(),
  };
}

// --- the scenarios -------------------------------------------------------------

// What each scenario's client does, as the suite's own example clients do it
// (examples/clients/typescript in modelcontextprotocol/conformance), through
// whichever client and endpoint were chosen. `name(n)` is the name the
// client sees for the upstream's tool or prompt `n`; `upstreamName(n)` the
// reverse.
const scenarios = {
  // Connect, list, call the first tool with {a: 2, b: 3}.
  async initialize(ctx) {
    const client = await ctx.connect();
    const tools = await client.listTools();
    if (tools[0]) await client.callTool(tools[0].name, { a: 2, b: 3 });
    await client.close();
  },
  tools_call: (ctx) => scenarios.initialize(ctx),

  // Only list: the scenario judges the requests the client sends on the way.
  async 'request-metadata'(ctx) {
    const client = await ctx.connect({ capabilities: { roots: {}, sampling: {}, elicitation: {} } });
    await client.listTools();
    await client.close();
  },
  async 'json-schema-ref-no-deref'(ctx) {
    const client = await ctx.connect();
    await client.listTools();
    await client.close();
  },

  // List, then send the focal tool's inputSchema, as received, to the echo tool.
  async 'json-schema-2020-12-preservation'(ctx) {
    const client = await ctx.connect();
    const tools = await client.listTools();
    const focal = tools.find((t) => t.name === ctx.name('json_schema_2020_12_tool'));
    if (!focal) throw new Error('json_schema_2020_12_tool is not listed');
    await client.callTool(ctx.name('json_schema_echo'), { schema: focal.inputSchema });
    await client.close();
  },

  // Every method whose Mcp-Method / Mcp-Name the scenario checks.
  async 'http-standard-headers'(ctx) {
    const client = await ctx.connect();
    for (const tool of await client.listTools()) await client.callTool(tool.name, {});
    for (const resource of await client.listResources()) await client.readResource(resource.uri);
    for (const prompt of await client.listPrompts()) await client.getPrompt(prompt.name, {});
    await client.close();
  },

  // The calls the scenario hands over in MCP_CONFORMANCE_CONTEXT.
  async 'http-custom-headers'(ctx) {
    const client = await ctx.connect();
    await client.listTools();
    for (const call of ctx.context.toolCalls ?? []) {
      await client.callTool(ctx.name(call.name), call.arguments);
    }
    await client.close();
  },

  // Call every tool the client was given, with an argument of the declared
  // type for each required property: tools with an invalid x-mcp-header must
  // not be among them (SEP-2243), the valid one must.
  async 'http-invalid-tool-headers'(ctx) {
    const client = await ctx.connect();
    const sample = { string: 'x', integer: 1, number: 1, boolean: true, object: {}, array: [], null: null };
    for (const tool of await client.listTools()) {
      const properties = tool.inputSchema?.properties ?? {};
      const args = {};
      for (const key of tool.inputSchema?.required ?? []) args[key] = sample[properties[key]?.type] ?? 'x';
      try {
        await client.callTool(tool.name, args);
      } catch (error) {
        log(`${tool.name}: ${error.message}`);
      }
    }
    await client.close();
  },

  // SEP-2322: two tools ask for input (one with requestState, one without),
  // a third answers without resultType. While the first is waiting for its
  // input, another tool is called: no state of the first may travel with it.
  async 'sep-2322-client-request-state'(ctx) {
    let unrelatedCalled = false;
    let client;
    client = await ctx.connect({
      capabilities: { elicitation: {} },
      async onElicit() {
        if (!unrelatedCalled) {
          unrelatedCalled = true;
          await client.callTool(ctx.name('test_mrtr_unrelated'), {});
        }
        return { action: 'accept', content: { confirmed: true } };
      },
    });
    await client.listTools();
    await client.callTool(ctx.name('test_mrtr_echo_state'), {});
    await client.callTool(ctx.name('test_mrtr_no_state'), {});
    await client.callTool(ctx.name('test_mrtr_no_result_type'), {});
    await client.close();
  },

  // SEP-1034: accept with empty content; the client declared applyDefaults,
  // so the defaults of the requested schema are what the server must get.
  async 'elicitation-sep1034-client-defaults'(ctx) {
    const client = await ctx.connect({
      capabilities: { elicitation: { form: { applyDefaults: true } } },
      onElicit: async () => ({ action: 'accept', content: {} }),
    });
    await client.listTools();
    await client.callTool(ctx.name('test_client_elicitation_defaults'), {});
    await client.close();
  },

  // The server ends the call's SSE stream after a priming event with
  // `retry: 500`; the answer comes on the GET stream the client reopens.
  async 'sse-retry'(ctx) {
    const client = await ctx.connect();
    await client.listTools();
    await client.callTool(ctx.name('test_reconnection'), {});
    await client.close();
  },
};

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const scenario = process.env.MCP_CONFORMANCE_SCENARIO;
  const run = scenarios[scenario];
  if (!run) throw new Error(`no client behaviour for scenario ${JSON.stringify(scenario)}`);
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}');
  log(`scenario ${scenario}, client ${options.client}, via ${options.via}, server ${options.url}`);

  let gateway = null;
  let url = options.url;
  if (options.via !== 'direct') {
    gateway = await startGateway(options.url);
    url = options.via === 'mcp' ? `${gateway.base}/mcp` : `${gateway.base}/servers/${UPSTREAM}/mcp`;
    log(`through ${url}`);
  }
  const prefix = options.via === 'mcp' ? `${UPSTREAM}_` : '';
  try {
    await run({
      context,
      name: (upstreamName) => prefix + upstreamName,
      connect: (opts) => connect(options.client, url, opts),
    });
  } finally {
    if (gateway) await gateway.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    log(`failed: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
