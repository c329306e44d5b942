// Preload (`node -r ./loopback.cjs`) that keeps a server on loopback.
//
// @modelcontextprotocol/server-everything calls `app.listen(PORT)` with no
// host, so Node binds every interface, and it has no host option. Tests must
// only ever listen on 127.0.0.1, so we rewrite every TCP listen() here.
//
// It also prints the port really bound, because server-everything only echoes
// the PORT it was given ("... listening on port 0" is useless):
//   loopback: listening on 127.0.0.1:<port>      (stderr, once per server)
// That makes `PORT=0` usable: read the port from this line.
'use strict';
const net = require('node:net');

const HOST = '127.0.0.1';
const origListen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  const first = args[0];
  let opts;
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb]): drop the host, keep the backlog.
    opts = { port: Number(first), host: HOST };
    if (typeof args[2] === 'number') opts.backlog = args[2];
    else if (typeof args[1] === 'number') opts.backlog = args[1];
  } else if (first === undefined || first === null) {
    opts = { port: 0, host: HOST }; // listen() with no port = random port
  } else if (typeof first === 'object' && !first._handle && !('fd' in first) && first.path === undefined) {
    opts = { ...first, host: HOST }; // listen({port, host, ...})
  } else {
    return origListen.call(this, ...args, ...(cb ? [cb] : [])); // unix socket / handle: untouched
  }
  this.once('listening', () => {
    const a = this.address();
    process.stderr.write(`loopback: listening on ${a.address}:${a.port}\n`);
  });
  return origListen.call(this, opts, ...(cb ? [cb] : []));
};
