// Drives a real TypeScript MCP client against an HTTP URL for Switchboard's tests.
//
// Usage: node tests/peers/ts_client.mjs <url> <legacy|modern|auto> '<plan json>'
//   legacy: @modelcontextprotocol/sdk 1.x, 2025 `initialize` handshake
//   modern: @modelcontextprotocol/client 2.x pinned to 2026-07-28 (server/discover, no fallback)
//   auto:   @modelcontextprotocol/client 2.x probing with server/discover, falling back to initialize
// Plan: {"calls": [{"name": "tool", "arguments": {...}, "progress": true, "abortAfterMs": 300}],
//        "headers": {"K": "V"}, "elicitation": {"action": "accept", "content": {...}}}
//   progress:     count the call's progress notifications (reported as "progress")
//   abortAfterMs: cancel the call after that long (the SDK's AbortSignal)
//   elicitation:  declare the capability and answer every elicitation with this
//                 (counted in the output's "elicitations")
//   sampling:     declare the capability and answer every sampling/createMessage
//                 with this result (counted in "samplings")
//   roots:        declare the capability and answer roots/list with these roots
//                 ([{"uri", "name"}], counted in "rootsLists")
//   logs:         collect notifications/message data (reported as "logs"); a
//                 number: wait up to 10 s after the calls until that many came
//                 (they travel on the GET stream, apart from the calls' answers)
//   subscribe:    ["uri", ...] resources/subscribe before the calls (2025 clients);
//                 notifications/resources/updated are collected ("resourceUpdates",
//                 their URIs); awaitUpdates: N waits up to 10 s after the calls
//                 until N came
//   logLevel:     logging/setLevel before the calls (2025 clients)
//   reads:        ["uri", ...] read with resources/read after the calls, the
//                 result checked by the SDK's own (era-strict) schema
//   tasks:        [{"name", "arguments", "cancel": bool}] (2025 clients): each a
//                 task-augmented tools/call; then tasks/cancel (if cancel) and
//                 tasks/get until the task ends (30 s at most), and tasks/result
//                 of a completed one; then tasks/list, every page. Reported as
//                 "tasks": [{"name", "taskId", "status", "text"}], "taskList":
//                 [taskIds] and "taskStatuses": [taskIds of
//                 notifications/tasks/status], every result checked by the SDK's
//                 own schema
//
// Prints one JSON line on stdout:
//   {"protocolVersion", "sessionId", "tools": [names], "calls": [
//     {"name", "isError", "text", "structured"} | {"name", "error": {"code", "message"}}],
//    "reads": [{"uri", "text", "result"} | {"uri", "error": {"code", "message"}}]}
// then ends the session (DELETE when the server gave a session id, like the
// Python client) and exits 0. Any other failure: message on stderr, exit 1.

const [url, mode, planArg] = process.argv.slice(2);

async function main() {
  if (!url || !['legacy', 'modern', 'auto'].includes(mode)) {
    throw new Error('usage: ts_client.mjs <url> <legacy|modern|auto> <plan json>');
  }
  const plan = JSON.parse(planArg ?? '{}');
  // requestInit headers ride on every POST/GET/DELETE the transport makes.
  const transportOpts = { requestInit: { headers: plan.headers ?? {} } };
  const info = { name: 'switchboard-test-ts-client', version: '0.0.0' };

  // Bare specifiers resolve from tests/peers/node_modules whatever the cwd is.
  // The two SDK majors are separate packages; load only the one this mode needs.
  // Declared only when the plan answers elicitations, so that a server
  // (and the gateway) can tell a client that cannot.
  const capabilities = {};
  if (plan.elicitation) capabilities.elicitation = {};
  if (plan.sampling) capabilities.sampling = {};
  if (plan.roots) capabilities.roots = {};
  const options = Object.keys(capabilities).length ? { capabilities } : {};
  let elicitations = 0;
  const elicit = async () => {
    elicitations += 1;
    return plan.elicitation;
  };
  let samplings = 0;
  const sample = async () => {
    samplings += 1;
    return plan.sampling;
  };
  let rootsLists = 0;
  const listRoots = async () => {
    rootsLists += 1;
    return { roots: plan.roots };
  };
  const logs = [];
  const resourceUpdates = [];
  const taskStatuses = [];
  let client, transport, isRpcError, negotiated, listAllTools, callTool;
  if (mode === 'legacy') {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const { McpError } = await import('@modelcontextprotocol/sdk/types.js');
    client = new Client(info, options);
    transport = new StreamableHTTPClientTransport(new URL(url), transportOpts);
    const types = await import('@modelcontextprotocol/sdk/types.js');
    if (plan.elicitation) client.setRequestHandler(types.ElicitRequestSchema, elicit);
    if (plan.sampling) client.setRequestHandler(types.CreateMessageRequestSchema, sample);
    if (plan.roots) client.setRequestHandler(types.ListRootsRequestSchema, listRoots);
    if (plan.logs) {
      client.setNotificationHandler(types.LoggingMessageNotificationSchema, (n) => logs.push(n.params.data));
    }
    client.setNotificationHandler(types.TaskStatusNotificationSchema, (n) => taskStatuses.push(n.params.taskId));
    if (plan.subscribe) {
      client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) =>
        resourceUpdates.push(n.params.uri),
      );
    }
    callTool = (params, requestOptions) => client.callTool(params, undefined, requestOptions);
    // v1 throws McpError for JSON-RPC error responses (and for its own
    // timeout / connection-closed, codes -32001 / -32000); HTTP failures are
    // StreamableHTTPError, whose numeric `code` is an HTTP status, so test the class.
    isRpcError = (e) => e instanceof McpError;
    // v1 has no getNegotiatedProtocolVersion(); the transport keeps the version it sends.
    negotiated = () => transport.protocolVersion;
    // v1 listTools() returns one page: follow nextCursor ourselves.
    listAllTools = async () => {
      const tools = [];
      let cursor;
      do {
        const page = await client.listTools(cursor === undefined ? undefined : { cursor });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return tools;
    };
  } else {
    const { Client, StreamableHTTPClientTransport, ProtocolError } = await import('@modelcontextprotocol/client');
    // v2 defaults to mode 'legacy'; see VersionNegotiationMode in the package's .d.mts.
    const negotiation = mode === 'modern' ? { pin: '2026-07-28' } : 'auto';
    client = new Client(info, { ...options, versionNegotiation: { mode: negotiation } });
    transport = new StreamableHTTPClientTransport(new URL(url), transportOpts);
    if (plan.elicitation) client.setRequestHandler('elicitation/create', elicit);
    if (plan.sampling) client.setRequestHandler('sampling/createMessage', sample);
    if (plan.roots) client.setRequestHandler('roots/list', listRoots);
    if (plan.logs) client.setNotificationHandler('notifications/message', (n) => logs.push(n.params.data));
    callTool = (params, requestOptions) => client.callTool(params, requestOptions);
    // ProtocolError = JSON-RPC error; SdkError (string codes) = local/transport failure.
    isRpcError = (e) => ProtocolError.isInstance(e);
    negotiated = () => client.getNegotiatedProtocolVersion();
    // v2 listTools() without a cursor walks every nextCursor page itself and
    // fills the cache that callTool's output-schema validation and 2026
    // Mcp-Param-* header mirroring read, as a real host would.
    listAllTools = async () => (await client.listTools()).tools;
  }

  await client.connect(transport);
  const tools = (await listAllTools()).map((t) => t.name);
  for (const uri of plan.subscribe ?? []) await client.subscribeResource({ uri });
  if (plan.logLevel) await client.setLoggingLevel(plan.logLevel);

  const calls = [];
  for (const { name, arguments: args, progress, abortAfterMs } of plan.calls ?? []) {
    let progressSeen = 0;
    const requestOptions = {};
    if (progress) requestOptions.onprogress = () => (progressSeen += 1);
    if (abortAfterMs !== undefined) requestOptions.signal = AbortSignal.timeout(abortAfterMs);
    try {
      const r = await callTool({ name, arguments: args ?? {} }, requestOptions);
      calls.push({
        name,
        isError: r.isError === true,
        text: (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
        structured: r.structuredContent ?? null,
        progress: progressSeen,
      });
    } catch (e) {
      if (abortAfterMs !== undefined && requestOptions.signal.aborted) {
        calls.push({ name, aborted: true });
        continue;
      }
      if (!isRpcError(e)) throw e;
      // v1 prefixes "MCP error <code>: "; report the server's own message.
      calls.push({ name, error: { code: e.code, message: e.message.replace(/^MCP error -?\d+: /, '') } });
    }
  }

  if (plan.awaitUpdates) {
    const deadline = Date.now() + 10000;
    while (resourceUpdates.length < plan.awaitUpdates && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  if (typeof plan.logs === 'number') {
    const deadline = Date.now() + 10000;
    while (logs.length < plan.logs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  const tasks = [];
  let taskList = [];
  if (plan.tasks) {
    if (mode !== 'legacy') throw new Error('tasks: 2025 clients (legacy mode) only');
    const types = await import('@modelcontextprotocol/sdk/types.js');
    for (const { name, arguments: args, cancel } of plan.tasks) {
      const created = await client.request(
        { method: 'tools/call', params: { name, arguments: args ?? {}, task: { ttl: 60000 } } },
        types.CreateTaskResultSchema,
      );
      const taskId = created.task.taskId;
      if (cancel) await client.request({ method: 'tasks/cancel', params: { taskId } }, types.CancelTaskResultSchema);
      let task = created.task;
      const deadline = Date.now() + 30000;
      while (!['completed', 'failed', 'cancelled'].includes(task.status) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        task = await client.request({ method: 'tasks/get', params: { taskId } }, types.GetTaskResultSchema);
      }
      let text = null;
      if (task.status === 'completed') {
        const result = await client.request({ method: 'tasks/result', params: { taskId } }, types.CallToolResultSchema);
        text = (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
      }
      tasks.push({ name, taskId, status: task.status, text });
    }
    let cursor;
    do {
      const page = await client.request(
        { method: 'tasks/list', params: cursor === undefined ? {} : { cursor } },
        types.ListTasksResultSchema,
      );
      taskList.push(...page.tasks.map((t) => t.taskId));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }

  const reads = [];
  for (const uri of plan.reads ?? []) {
    try {
      const r = await client.readResource({ uri });
      const text = (r.contents ?? []).map((c) => c.text ?? '').join('');
      reads.push({ uri, text, result: r });
    } catch (e) {
      if (!isRpcError(e)) throw e;
      reads.push({ uri, error: { code: e.code, message: e.message } });
    }
  }

  const out = {
    protocolVersion: negotiated() ?? null,
    sessionId: transport.sessionId ?? null,
    tools,
    calls,
    reads,
    tasks,
    taskList,
    taskStatuses,
    resourceUpdates,
    samplings,
    rootsLists,
    logs,
    elicitations,
  };
  // Clean end: DELETE the session if there is one (405 is tolerated by the SDK), then close.
  if (transport.sessionId) await transport.terminateSession();
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  // Exit explicitly: an SSE GET stream or keep-alive socket must not keep node alive.
  () => process.exit(0),
  (e) => {
    process.stderr.write(`ts_client (${mode}): ${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
