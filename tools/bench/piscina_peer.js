// The peer of `threads_bench`: N no-op tasks through a Node worker_threads
// pool (piscina), T threads, median of R runs. Prints "median: X tasks/s".
//   node tools/bench/piscina_peer.js [TASKS] [THREADS] [RUNS]
// piscina comes from npm; tools/bench/bench threads installs it in a cache
// directory and sets NODE_PATH.
'use strict';
const { isMainThread } = require('worker_threads');

if (!isMainThread) {
  module.exports = () => null;  // the no-op task
} else {
  const Piscina = require('piscina');
  const tasks = Number(process.argv[2] || 200000);
  const threads = Number(process.argv[3] || 2);
  const runs = Number(process.argv[4] || 3);

  // Keeps `window` tasks in flight, as a dispatcher with credits would:
  // queueing all N at once makes piscina's own queue the bottleneck.
  const window = Number(process.env.PISCINA_WINDOW || 1024);
  async function once(pool) {
    const start = process.hrtime.bigint();
    let submitted = 0;
    async function lane() {
      while (submitted < tasks) {
        submitted++;
        await pool.run(null);
      }
    }
    const lanes = [];
    for (let i = 0; i < Math.min(window, tasks); i++) lanes.push(lane());
    await Promise.all(lanes);
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    return tasks / secs;
  }

  (async () => {
    const pool = new Piscina({ filename: __filename, minThreads: threads,
                               maxThreads: threads });
    await once(pool);  // warm-up: threads started, code compiled
    const rates = [];
    for (let r = 0; r < runs; r++) {
      const rate = await once(pool);
      rates.push(rate);
      console.log(`  run ${r + 1}: ${Math.round(rate)} tasks/s`);
    }
    rates.sort((a, b) => a - b);
    console.log(`median: ${Math.round(rates[Math.floor(rates.length / 2)])} tasks/s`);
    await pool.destroy();
  })().catch((e) => { console.error(e); process.exit(1); });
}
