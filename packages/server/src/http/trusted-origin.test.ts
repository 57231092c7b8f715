import type { IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ProblemError } from '@pep694/core';
import { boundAuthorities, originOf, TrustedOrigins } from './trusted-origin.js';

const request = (url: string, host?: string | string[]): IncomingMessage => {
  const hosts = host === undefined ? [] : Array.isArray(host) ? host : [host];
  return {
    url,
    headers: hosts.length > 0 ? { host: hosts[0] } : {},
    headersDistinct: hosts.length > 0 ? { host: hosts } : {},
  } as unknown as IncomingMessage;
};
const codeOf = (f: () => void): string | undefined => {
  try {
    f();
  } catch (err) {
    return ProblemError.is(err) ? err.code : String(err);
  }
  return undefined;
};

describe('the hosts an index serves by default: what listen() bound', () => {
  it('a loopback address, with localhost', () => {
    expect(boundAuthorities({ address: '127.0.0.1', family: 'IPv4', port: 8694 })).toEqual(['127.0.0.1:8694', 'localhost:8694']);
    expect(boundAuthorities({ address: '::1', family: 'IPv6', port: 8694 })).toEqual(['[::1]:8694', 'localhost:8694']);
  });
  it('another address alone', () => {
    expect(boundAuthorities({ address: '192.0.2.7', family: 'IPv4', port: 80 })).toEqual(['192.0.2.7:80']);
  });
  it('a wildcard address: every interface address (IPv4 only for 0.0.0.0) and localhost', () => {
    const v4 = Object.values(networkInterfaces())
      .flat()
      .filter((i) => i?.family === 'IPv4')
      .map((i) => `${i.address}:1`);
    const any = boundAuthorities({ address: '0.0.0.0', family: 'IPv4', port: 1 });
    expect(any).toEqual(expect.arrayContaining([...v4, '127.0.0.1:1', 'localhost:1']));
    expect(any.some((a) => a.startsWith('['))).toBe(false);
    expect(boundAuthorities({ address: '::', family: 'IPv6', port: 1 })).toEqual(
      expect.arrayContaining(['127.0.0.1:1', '[::1]:1', 'localhost:1']),
    );
  });
});

describe('TrustedOrigins', () => {
  it('serves nothing before listen() unless configured, and says how to fix it', () => {
    const origins = new TrustedOrigins({});
    let detail = '';
    try {
      origins.check(request('/', 'localhost:8694'));
    } catch (err) {
      detail = (err as ProblemError).detail;
    }
    expect(detail).toMatch(/its operator must set publicUrl or allowedHosts/);
    origins.bound({ address: '127.0.0.1', family: 'IPv4', port: 8694 });
    const req = request('/', 'localhost:8694');
    origins.check(req);
    expect(originOf(req)).toBe('http://localhost:8694');
  });
  it('a port is part of the authority: a Host without one means port 80', () => {
    const origins = new TrustedOrigins({ allowedHosts: ['a.example:80', 'b.example:8080'] });
    expect(codeOf(() => origins.check(request('/', 'a.example')))).toBeUndefined();
    expect(codeOf(() => origins.check(request('/', 'b.example')))).toBe('misdirected-request');
    expect(codeOf(() => origins.check(request('/', 'b.example:8080')))).toBeUndefined();
  });
  it('normalizes an absolute-form target to its path, and its authority replaces Host', () => {
    const origins = new TrustedOrigins({ allowedHosts: ['index.example'] });
    const req = request('http://INDEX.example:9/simple?x=1', 'evil.example');
    origins.check(req);
    expect(req.url).toBe('/simple?x=1');
    expect(originOf(req)).toBe('http://index.example:9');
    const bare = request('http://index.example', 'evil.example');
    origins.check(bare);
    expect(bare.url).toBe('/');
    expect(codeOf(() => origins.check(request('http://evil.example/simple', 'index.example')))).toBe('misdirected-request');
    expect(codeOf(() => origins.check(request('http://user@index.example/', 'index.example')))).toBe('malformed-request');
  });
  it('with publicUrl only, any Host (or none) gets the public origin', () => {
    const origins = new TrustedOrigins({ publicUrl: 'https://upload.example.org/' });
    for (const req of [request('/', 'whatever.example'), request('/'), request('http://evil.example/x', 'a')]) {
      origins.check(req);
      expect(originOf(req)).toBe('https://upload.example.org');
    }
  });
  it('originOf refuses a request that was never checked', () => {
    expect(() => originOf(request('/', 'localhost'))).toThrow(/trusted-origin guard/);
  });
});
