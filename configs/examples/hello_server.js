// The classic Node "hello world" server (nodejs.org's first example), able
// to run under drover's cluster backend.
//
// Under drover (docs/backends/cluster.md) the listening socket is already
// open and inherited on fd 3, the systemd way: LISTEN_FDS=1 and LISTEN_PID
// say so, and `server.listen({fd: 3})` takes it. Run by hand, it listens on
// PORT (default 3000) instead:
//
//   node configs/examples/hello_server.js            # http://127.0.0.1:3000/
//
// A round-robin service hands connections over a Unix socket instead
// (DROVER_HANDOFF_FD); this server does not speak that, so use it with
// mode reuseport or shared.
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/plain');
  // Which instance answered, as `drover serve` says it: lets benchmarks
  // count requests per instance.
  res.setHeader('X-Drover-Pid', String(process.pid));
  res.end('Hello, World!\n');
});

const inherited = process.env.LISTEN_FDS === '1' &&
    (!process.env.LISTEN_PID || process.env.LISTEN_PID === String(process.pid));
if (inherited) {
  server.listen({fd: 3});
} else {
  const port = Number(process.env.PORT || 3000);
  server.listen(port, '127.0.0.1', () => {
    console.log(`Server running at http://127.0.0.1:${port}/`);
  });
}

// Finish what is in flight, then exit, when the supervisor says SIGTERM.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
