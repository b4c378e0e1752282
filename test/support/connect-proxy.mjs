// A small HTTP CONNECT proxy, run as its own process by the e2e tests (node test/support/connect-proxy.mjs).
// PROXY_PORT: where it listens (0: any; it prints "listening <port>"). PROXY_DENY: comma list of target hosts
// it refuses with PROXY_DENY_STATUS (default 403). One line "CONNECT host:port <status>" per request, on stdout.
import { connect, createServer } from 'node:net';

const deny = new Set((process.env.PROXY_DENY ?? '').split(',').filter(Boolean));
const denyStatus = Number(process.env.PROXY_DENY_STATUS ?? 403);
const HEAD_END = '\r\n\r\n';

const server = createServer((client) => {
  let head = '';
  client.on('error', () => client.destroy());
  const onData = (chunk) => {
    head += chunk.toString('latin1');
    const end = head.indexOf(HEAD_END);
    if (end === -1) return;
    client.off('data', onData);
    client.pause();
    const [method, authority] = head.slice(0, head.indexOf('\r\n')).split(' ');
    const rest = Buffer.from(head.slice(end + HEAD_END.length), 'latin1');
    if (method !== 'CONNECT') {
      console.log(`${method} ${authority} 405`);
      return client.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    }
    const colon = authority.lastIndexOf(':');
    const host = authority.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(authority.slice(colon + 1));
    if (deny.has(host)) {
      console.log(`CONNECT ${authority} ${denyStatus}`);
      return client.end(`HTTP/1.1 ${denyStatus} Forbidden by policy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    }
    let connected = false;
    const upstream = connect({ host, port }, () => {
      connected = true;
      console.log(`CONNECT ${authority} 200`);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (rest.length > 0) upstream.write(rest);
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    });
    upstream.on('error', () => {
      if (!connected) client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
  };
  client.on('data', onData);
});

server.listen(Number(process.env.PROXY_PORT ?? 0), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
