import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ConnectionCap } from './connection-cap.guard';
import { TrustedProxies } from './client-address';

function fakeSocket(remoteAddress: string | undefined) {
  return Object.assign(new EventEmitter(), { remoteAddress }) as unknown as net.Socket;
}

describe('ConnectionCap', () => {
  it('admits up to max per address, refuses beyond, and frees a place when a connection closes', () => {
    const cap = new ConnectionCap(2);
    const a1 = fakeSocket('10.0.0.1');
    const a2 = fakeSocket('10.0.0.1');
    expect(cap.admit(a1)).toBe(true);
    expect(cap.admit(a2)).toBe(true);
    expect(cap.admit(fakeSocket('10.0.0.1'))).toBe(false);
    expect(cap.admit(fakeSocket('10.0.0.2'))).toBe(true);
    expect(cap.refused).toBe(1);
    a1.emit('close');
    expect(cap.openFrom('10.0.0.1')).toBe(1);
    expect(cap.admit(fakeSocket('10.0.0.1'))).toBe(true);
    expect(cap.openFrom('10.0.0.1')).toBe(2);
  });

  it('counts an IPv4-mapped peer as its IPv4 address and an IPv6 peer per /64', () => {
    const cap = new ConnectionCap(2);
    expect(cap.admit(fakeSocket('::ffff:10.0.0.1'))).toBe(true);
    expect(cap.admit(fakeSocket('10.0.0.1'))).toBe(true);
    expect(cap.admit(fakeSocket('10.0.0.1'))).toBe(false);
    expect(cap.admit(fakeSocket('2001:db8:1:2::1'))).toBe(true);
    expect(cap.admit(fakeSocket('2001:db8:1:2:ffff::9'))).toBe(true);
    expect(cap.admit(fakeSocket('2001:db8:1:2::7'))).toBe(false);
    expect(cap.admit(fakeSocket('2001:db8:1:3::1'))).toBe(true);
  });

  it('does not count exempt peers (trusted proxies), nor a socket already gone', () => {
    const trusted = new TrustedProxies(['10.9.0.0/16']);
    const cap = new ConnectionCap(1, (peer) => trusted.has(peer));
    for (let i = 0; i < 5; i++) expect(cap.admit(fakeSocket('10.9.1.1'))).toBe(true);
    expect(cap.openFrom('10.9.1.1')).toBe(0);
    expect(cap.admit(fakeSocket(undefined))).toBe(true);
    expect(cap.admit(fakeSocket('10.8.1.1'))).toBe(true);
    expect(cap.admit(fakeSocket('10.8.1.1'))).toBe(false);
  });

  it('installed on a real server: the refused connection gets a 429 and never reaches the request handler', async () => {
    let handled = 0;
    const server = http.createServer((_req, res) => {
      handled++;
      res.end('ok');
    });
    new ConnectionCap(1).install(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const first = net.connect(port, '127.0.0.1');
    await new Promise((r) => first.once('connect', r));
    const second = net.connect(port, '127.0.0.1');
    second.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const text = await new Promise<string>((resolve) => {
      let got = '';
      second.on('data', (d) => (got += d));
      second.on('close', () => resolve(got));
    });
    expect(text).toMatch(/^HTTP\/1\.1 429 /);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error.code).toBe('too_many_connections');
    expect(handled).toBe(0);
    first.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
