#!/usr/bin/env bash
# Usage: tests/peers/everything.sh <port>
#
# Runs @modelcontextprotocol/server-everything (2025-era MCP server, Streamable
# HTTP at http://127.0.0.1:<port>/mcp) from tests/peers/node_modules -- never
# npx from the network -- and only on loopback: the server binds all
# interfaces and has no host option, so loopback.cjs rewrites listen().
#
# Ready: stderr gets "loopback: listening on 127.0.0.1:<port>" (the real port,
# so <port> may be 0) followed by the server's own
# "MCP Streamable HTTP Server listening on port <port as given>".
# `exec` makes node take this script's pid: killing that pid kills the server.
# The server logs every request on stdout: drain it or send it to /dev/null.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 <port>" >&2; exit 2; }
entry="$here/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
[ -f "$entry" ] || { echo "missing $entry: run 'npm ci' in $here" >&2; exit 1; }
PORT="$1" exec node -r "$here/loopback.cjs" "$entry" streamableHttp
