"""Drives the real Python MCP client (PyPI `mcp`, see requirements.txt) against an HTTP URL.

Usage: python3 tests/peers/py_client.py <url> '<plan json>'
A URL whose path ends in /sse is spoken to with the 2024-11-05 HTTP+SSE
transport (mcp.client.sse.sse_client); any other with Streamable HTTP. The URL
`stdio` launches the plan's "command" with its "args" and speaks stdio
(mcp.client.stdio.stdio_client).
Plan: {"calls": [{"name": "tool", "arguments": {...}}], "headers": {"K": "V"},
       "command": "...", "args": [...]}

Same contract as ts_client.mjs: one JSON line on stdout
  {"protocolVersion", "sessionId", "tools": [names], "calls": [
    {"name", "isError", "text", "structured"} | {"name", "error": {"code", "message"}}]}
after the session ended cleanly (the transport DELETEs its session on exit), exit 0;
on any other failure the error goes to stderr and the exit code is 1.
This client always uses the 2025 `initialize` handshake.
"""

import contextlib
import json
import sys
import traceback
from urllib.parse import urlparse

import anyio
import httpx2  # the HTTP client mcp 2.x is built on (a fork of httpx)
from mcp import ClientSession, MCPError, types
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def run(url: str, plan: dict) -> dict:
    # streamable_http_client yields only the two streams and keeps the session id
    # to itself, so read it off the responses with an httpx response hook.
    seen = {"session_id": None}

    async def on_response(response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid:
            seen["session_id"] = sid

    # Headers must go on the httpx client: the transport has no headers option.
    # create_mcp_http_client keeps the SDK's own timeouts (30 s, 300 s SSE read).
    http = create_mcp_http_client(headers=plan.get("headers") or {})
    http.event_hooks = {"response": [on_response]}

    async with contextlib.AsyncExitStack() as stack:
        if url == "stdio":
            params = StdioServerParameters(command=plan["command"], args=plan.get("args") or [])
            read, write = await stack.enter_async_context(stdio_client(params))
        elif urlparse(url).path.endswith("/sse"):
            read, write = await stack.enter_async_context(
                sse_client(
                    url,
                    headers=plan.get("headers") or {},
                    on_session_created=lambda sid: seen.update(session_id=sid),
                )
            )
        else:
            await stack.enter_async_context(http)
            read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        async with ClientSession(read, write) as session:
            init = await session.initialize()

            tools, cursor = [], None
            while True:  # list_tools returns one page: follow nextCursor
                page = await session.list_tools(
                    params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
                )
                tools += [t.name for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    break

            calls = []
            for call in plan.get("calls") or []:
                name = call["name"]
                try:
                    r = await session.call_tool(name, call.get("arguments") or {})
                except MCPError as e:
                    # JSON-RPC error response (also the SDK's own read timeout / closed connection).
                    calls.append({"name": name, "error": {"code": e.error.code, "message": e.error.message}})
                    continue
                calls.append({
                    "name": name,
                    "isError": bool(r.is_error),  # snake case in mcp 2.x
                    "text": "\n".join(c.text for c in r.content if c.type == "text"),
                    "structured": r.structured_content,
                })

    return {
        "protocolVersion": init.protocol_version,
        "sessionId": seen["session_id"],
        "tools": tools,
        "calls": calls,
    }


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print("usage: py_client.py <url> '<plan json>'", file=sys.stderr)
        return 1
    try:
        out = anyio.run(run, sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) == 3 else "{}"))
    except BaseException:  # anyio wraps task failures in ExceptionGroups: print them whole
        traceback.print_exc()
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
