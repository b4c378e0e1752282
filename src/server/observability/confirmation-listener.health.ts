import { connect } from 'node:net';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { AppConfig } from '../config/app-config.js';
import { ConfirmationListener } from '../confirmation/confirmation.listener.js';

/** Where a local probe reaches a listener bound to `bindHost`: the loopback address for a wildcard bind. */
export function probeHost(bindHost: string): string {
  if (bindHost === '0.0.0.0') return '127.0.0.1';
  if (bindHost === '::' || bindHost === '[::]') return '::1';
  return bindHost.replace(/^\[(.*)\]$/, '$1');
}

/**
 * The delivery confirmation receiver [89]: up when its TCP server is listening and a connection to its
 * port is accepted (the probe sends nothing, so nothing is recorded).
 */
@Injectable()
export class ConfirmationListenerHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly listener: ConfirmationListener,
    private readonly config: AppConfig,
  ) {}

  check(key: string, timeoutMs: number): PromiseLike<HealthIndicatorResult<string>> {
    const port = this.listener.port;
    return this.health
      .check(key)
      .attempt(async ({ signal }) => {
        if (!this.listener.listening) throw new Error('the confirmation listener is not listening');
        await tcpConnect(probeHost(this.config.confirmBindHost), port, signal);
        return { port };
      })
      .withTimeout(timeoutMs);
  }
}

function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, signal });
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', (error) => {
      socket.destroy();
      reject(new Error(`TCP connect to port ${port} failed: ${(error as NodeJS.ErrnoException).code ?? error.message}`));
    });
  });
}
