// A fork-pool process for drover, unmodified from the classic Node example:
// it works the same under Node's own child_process.fork and under drover's
// fork backend (docs/backends/fork.md), because both talk Node's IPC channel.
process.on('message', (msg) => {
  process.send(msg.sort((a, b) => a - b));
});
