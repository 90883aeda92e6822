// The peer of `tools/bench/bench cluster`: the classic Node hello-world
// server (the logic of configs/examples/hello_server.js) under Node's own
// `cluster` module, N workers, the primary's default round-robin
// scheduling (SCHED_RR on Linux).
//
//   node tools/bench/node_cluster_peer.js PORT [WORKERS]
//
// Prints "ready PORT" once every worker listens; SIGTERM ends it.
'use strict';
const cluster = require('cluster');
const http = require('http');

const port = Number(process.argv[2] || 3000);
const workers = Number(process.argv[3] || 2);

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', () => {
    if (++listening === workers) console.log(`ready ${port}`);
  });
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].kill('SIGTERM');
    process.exit(0);
  });
} else {
  http.createServer((req, res) => {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('X-Drover-Pid', String(process.pid));
    res.end('Hello, World!\n');
  }).listen(port, '127.0.0.1');
}
