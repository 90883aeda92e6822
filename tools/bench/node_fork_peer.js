// The peer for tools/bench/ipc_bench.cc: Node's own child_process.fork,
// parent and child, measured the way ipc_bench measures drover.
//
//   node node_fork_peer.js rt N          N round trips of [3,1,2] (after
//                                        1,000 warm-up ones) through the
//                                        classic sort child; prints
//                                        {"round_trips_per_s", "p50_us"}
//   node node_fork_peer.js sort FILE     once the child has answered a
//                                        warm-up message, sends the JSON
//                                        array in FILE and times the answer;
//                                        prints {"ms", "count"}
//
// The child is configs/examples/fork_sort.js, the same file drover runs.
'use strict';
const { fork } = require('child_process');
const fs = require('fs');
const path = require('path');

const child = fork(path.join(__dirname, '../../configs/examples/fork_sort.js'));
const [mode, arg] = process.argv.slice(2);

function done(result) {
  console.log(JSON.stringify(result));
  child.disconnect();
}

if (mode === 'rt') {
  const warm = 1000;
  const n = Number(arg);
  const latencies = [];
  let replies = 0;
  let start = 0n;
  let sent = 0n;
  child.on('message', () => {
    const now = process.hrtime.bigint();
    replies++;
    if (replies > warm) latencies.push(Number(now - sent));
    if (replies === warm) start = now;
    if (replies < warm + n) {
      sent = process.hrtime.bigint();
      child.send([3, 1, 2]);
      return;
    }
    latencies.sort((a, b) => a - b);
    done({
      round_trips_per_s: n / (Number(now - start) / 1e9),
      p50_us: latencies[latencies.length >> 1] / 1e3,
    });
  });
  sent = process.hrtime.bigint();
  child.send([3, 1, 2]);
} else if (mode === 'sort') {
  const numbers = JSON.parse(fs.readFileSync(arg, 'utf8'));
  let start = 0n;
  let warm = true;
  child.on('message', (sorted) => {
    if (warm) {
      // The child is up and has answered once: now time the real sort.
      warm = false;
      start = process.hrtime.bigint();
      child.send(numbers);
      return;
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    done({ ms, count: sorted.length });
  });
  child.send([2, 1]);
} else {
  console.error('usage: node node_fork_peer.js rt N | sort FILE');
  process.exit(2);
}
