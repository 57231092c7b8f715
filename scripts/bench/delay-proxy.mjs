// A TCP proxy on loopback that holds every chunk `oneWayMs` before passing it on, in both
// directions and in order: a round trip between a client and the index behind it takes
// 2 × oneWayMs more, as over a network. The client section runs the release comparison through it
// (BENCH_RTT_MS), because Upload 2.0 makes three round trips per file where the legacy API makes
// one. It models latency only: no bandwidth limit, no loss, no slow start beyond what loopback TCP does.
import net from 'node:net';

/** Forwards `from` to `to`, each chunk `ms` later than it arrived; ends `to` after the last one. */
function delayed(from, to, ms) {
  const queue = [];
  let timer;
  let ended = false;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0].at <= now) to.write(queue.shift().chunk);
    if (queue.length > 0) timer = setTimeout(flush, queue[0].at - now);
    else if (ended) to.end();
  };
  from.on('data', (chunk) => {
    queue.push({ at: Date.now() + ms, chunk });
    timer ??= setTimeout(flush, ms);
  });
  from.on('end', () => {
    ended = true;
    timer ??= setTimeout(flush, ms);
  });
}

/**
 * Listens on a free loopback port; `target(port)` says where to forward (the index may need the
 * proxy's port first, for its public URL). Resolves with `{ port, target, close }`.
 */
export async function startDelayProxy(oneWayMs) {
  let targetPort;
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    delayed(client, upstream, oneWayMs);
    delayed(upstream, client, oneWayMs);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    target: (port) => (targetPort = port),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
