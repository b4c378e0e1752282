// An HTTP CONNECT tunnel (RFC 9110 §9.3.6) through the proxy HTTPS_PROXY / HTTP_PROXY names, for the bundle
// download's own HTTP client (fetch goes through undici's EnvHttpProxyAgent instead).
import { connect, Socket } from 'node:net';
import { proxyRefused } from '../http.js';

/** The proxy's answer head may not be larger than this. */
const MAX_PROXY_HEAD = 16 * 1024;
/** The proxy must have answered CONNECT within this long. */
export const TUNNEL_TIMEOUT_MS = 30_000;
const HEAD_END = Buffer.from('\r\n\r\n');

/** Where the tunnel goes: the host (brackets of an IPv6 address allowed) and port. */
export interface TunnelTarget {
  host: string;
  port: number;
}

/**
 * Connects to `proxy`, asks it for a tunnel to `target` and resolves with the socket once it answered 2xx:
 * the socket then carries the target's bytes (TLS on top for https). Credentials in the proxy URL go as
 * Proxy-Authorization: Basic. A proxy that answers anything else → proxyRefused (exit 6, its status named).
 */
export function openTunnel(proxy: URL, target: TunnelTarget, timeoutMs = TUNNEL_TIMEOUT_MS): Promise<Socket> {
  const authority = `${target.host.includes(':') && !target.host.startsWith('[') ? `[${target.host}]` : target.host}:${target.port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `host: ${authority}`, 'user-agent: dcx'];
  if (proxy.username) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    lines.push(`proxy-authorization: Basic ${Buffer.from(credentials).toString('base64')}`);
  }
  const request = `${lines.join('\r\n')}\r\n\r\n`;
  const proxyHost = proxy.hostname.replace(/^\[(.*)\]$/, '$1');
  const proxyPort = Number(proxy.port) || (proxy.protocol === 'https:' ? 443 : 80);

  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: proxyHost, port: proxyPort });
    let head = Buffer.alloc(0);
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`the proxy ${proxy.host} did not answer CONNECT within ${timeoutMs / 1000} s`)));
    socket.once('error', (error) => fail(new Error(`cannot reach the proxy ${proxy.host}: ${error.message}`, { cause: error })));
    socket.once('close', () => fail(new Error(`the proxy ${proxy.host} closed the connection without answering CONNECT`)));
    socket.once('connect', () => socket.write(request));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end === -1) {
        if (head.length > MAX_PROXY_HEAD)
          fail(new Error(`the proxy ${proxy.host} sent an answer head larger than ${MAX_PROXY_HEAD} bytes`));
        return;
      }
      socket.off('data', onData);
      const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
      if (!match)
        return fail(new Error(`the proxy ${proxy.host} did not answer CONNECT with HTTP (${JSON.stringify(statusLine.slice(0, 40))})`));
      const status = Number(match[1]);
      if (status < 200 || status > 299) {
        socket.destroy();
        return reject(proxyRefused(proxy, new URL(`http://${authority}`), status, match[2]));
      }
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      socket.removeAllListeners('timeout');
      socket.setTimeout(0);
      socket.pause();
      // Bytes after the proxy's head already belong to the target.
      const rest = head.subarray(end + HEAD_END.length);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}
