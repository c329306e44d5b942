"""A small upstream MCP server built on the Python SDK (PyPI `mcp`, see requirements.txt).

Usage: python3 tests/peers/py_server.py <port> <streamable-http|sse> [--extra-tool NAME]

Tools:
  echo(text)  -> text
  whoami()    -> the upstream session the call arrived on: the `mcp-session-id` header
                 (Streamable HTTP), the `session_id` query parameter of the message
                 endpoint (sse), or "none" (2026-07-28 requests are sessionless)
  NAME()      -> "NAME" (only with --extra-tool; lets a test tell two instances apart)

Listens on 127.0.0.1 only; <port> may be 0. When it accepts connections it prints
one line on stdout:
  py_server ready on http://127.0.0.1:<port>/mcp   (streamable-http; serves 2025 and 2026-07-28)
  py_server ready on http://127.0.0.1:<port>/sse   (sse, the 2024 HTTP+SSE transport)
The SDK's DNS-rebinding protection is on, as for any loopback MCPServer:
a Host/Origin other than 127.0.0.1:*, localhost:* or [::1]:* gets a 4xx.
"""

import argparse
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

HOST = "127.0.0.1"


def build(extra_tool: str | None) -> MCPServer:
    mcp = MCPServer("switchboard-test-py-server", log_level="WARNING")

    @mcp.tool()
    def echo(text: str) -> str:
        """Return text unchanged."""
        return text

    @mcp.tool()
    def whoami(ctx: Context) -> str:
        """Return the mcp-session-id header the call arrived with, or "none"."""
        # ctx.session is not stable across calls of one session; the HTTP request is.
        request = ctx.request_context.request
        if request is None:
            return "none"
        return request.headers.get("mcp-session-id") or request.query_params.get("session_id") or "none"

    if extra_tool:

        def extra() -> str:
            return extra_tool

        mcp.add_tool(extra, name=extra_tool, description=f"Returns {extra_tool!r}.")
    return mcp


async def serve(sock: socket.socket, transport: str, extra_tool: str | None) -> None:
    mcp = build(extra_tool)
    # Build the ASGI app ourselves instead of mcp.run(): run() gives no hook to
    # say when it is ready. `host` turns on the SDK's loopback Host/Origin checks.
    if transport == "streamable-http":
        app, path = mcp.streamable_http_app(host=HOST, streamable_http_path="/mcp"), "/mcp"
    else:
        app, path = mcp.sse_app(host=HOST), "/sse"
    # Bounded graceful shutdown: on SIGTERM/SIGINT uvicorn would otherwise wait
    # for clients' open SSE streams to end.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # set once the app's lifespan has started and it accepts
            await anyio.sleep(0.01)
        print(f"py_server ready on http://{HOST}:{sock.getsockname()[1]}{path}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("transport", choices=["streamable-http", "sse"])
    p.add_argument("--extra-tool", metavar="NAME")
    a = p.parse_args()
    # Bind here rather than in uvicorn: a busy port is then a one-line error,
    # and port 0 gives us the real port to print.
    try:
        sock = socket.create_server((HOST, a.port))
    except OSError as e:
        sys.exit(f"py_server: cannot listen on {HOST}:{a.port}: {e}")
    anyio.run(serve, sock, a.transport, a.extra_tool)


if __name__ == "__main__":
    main()
