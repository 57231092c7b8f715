// The policy on its own: pure checks, no network.
import { describe, expect, it } from 'vitest';
import { FetchPolicy, FetchRefused, parseAddressRule, parseHostRule } from './policy.js';

const policy = (allowHosts: string[], allowAddresses: string[] = [], schemes: ('http' | 'https')[] = ['https', 'http']) =>
  new FetchPolicy({ allowHosts, allowAddresses, schemes });
const refusal = (fn: () => void) => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FetchRefused);
    return (err as FetchRefused).message;
  }
  return undefined;
};

describe('host rules', () => {
  it('matches exact hosts, wildcard subdomains (not the apex) and ports', () => {
    const p = policy(['files.example.org', '*.cdn.example.net', 'mirror.example.com:8443', 'any.example.com:*', '[2001:db8::1]:*']);
    const ok = [
      'https://files.example.org/a.whl',
      'http://files.example.org/a',
      'https://FILES.example.org./x',
      'https://a.cdn.example.net/x',
      'https://a.b.cdn.example.net/x',
      'https://mirror.example.com:8443/x',
      'https://any.example.com:1234/x',
      'http://[2001:db8::1]:81/x',
      'https://files.example.org:443/x',
    ];
    for (const url of ok)
      expect(
        refusal(() => p.checkUrl(new URL(url))),
        url,
      ).toBeUndefined();
    const refused = [
      'https://cdn.example.net/x',
      'https://files.example.org:8443/x',
      'https://mirror.example.com/x',
      'https://evil.org/?files.example.org',
      'https://files.example.org.evil.org/x',
      'https://xcdn.example.net/x',
      'https://[2001:db8::2]/x',
    ];
    for (const url of refused)
      expect(
        refusal(() => p.checkUrl(new URL(url))),
        url,
      ).toMatch(/not on this index's allow-list/);
  });

  it('refuses everything with an empty list, other schemes, and credentials', () => {
    expect(refusal(() => policy([]).checkUrl(new URL('https://files.example.org/')))).toMatch(/allow-list is empty/);
    const p = policy(['files.example.org'], [], ['https']);
    expect(refusal(() => p.checkUrl(new URL('http://files.example.org/')))).toMatch(/does not fetch http URLs/);
    expect(refusal(() => p.checkUrl(new URL('ftp://files.example.org/')))).toMatch(/only http and https/);
    expect(refusal(() => p.checkUrl(new URL('https://u:p@files.example.org/')))).toMatch(/user name or password/);
    expect(refusal(() => p.checkUrl(new URL('https://u@files.example.org/')))).toMatch(/user name or password/);
  });

  it('canonicalizes numeric and odd spellings of hosts the way the URL parser does', () => {
    const p = policy(['127.0.0.1:*']);
    for (const url of ['http://2130706433:80/', 'http://0x7f.1:80/', 'http://127.1:80/'])
      expect(
        refusal(() => p.checkUrl(new URL(url))),
        url,
      ).toBeUndefined();
    expect(parseHostRule('Files.Example.ORG').host).toBe('files.example.org');
  });

  it('parses entries and says what is wrong with a bad one', () => {
    expect(parseHostRule('*.example.org:*')).toMatchObject({ host: '.example.org', wildcard: true, port: '*' });
    expect(parseHostRule('[::1]:8080')).toMatchObject({ host: '[::1]', port: 8080 });
    expect(() => parseHostRule('*')).toThrow(/bare "\*"/);
    expect(() => parseHostRule('a.*.org')).toThrow(/not a host/);
    expect(() => parseHostRule('*.127.0.0.1')).toThrow(/wildcard needs a domain name/);
    expect(() => parseHostRule('example.org:0')).toThrow(/out of range/);
    expect(() => parseHostRule('example.org:http')).toThrow(/number or "\*"/);
    expect(() => parseHostRule('user@example.org')).toThrow(/not a host/);
  });
});

describe('addresses', () => {
  const p = policy(['x']);
  it('allows public unicast only', () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::1111'])
      expect(
        refusal(() => p.checkAddress(a, 'h')),
        a,
      ).toBeUndefined();
  });
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['::ffff:192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fd00::1', 'unique-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['192.0.2.1', 'reserved'],
    ['64:ff9b::7f00:1', 'special-purpose'],
    ['2002:7f00:1::', 'special-purpose'],
  ])('refuses %s (%s)', (address, range) => {
    expect(refusal(() => p.checkAddress(address, 'h'))).toMatch(new RegExp(`a ${range.replace(/[()]/g, '.')}`));
  });
  it('allows special ranges the operator lists, and only those', () => {
    const q = policy(['x'], ['127.0.0.1', '10.20.0.0/16', '::1/128']);
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '10.20.3.4', '::1'])
      expect(
        refusal(() => q.checkAddress(a, 'h')),
        a,
      ).toBeUndefined();
    for (const a of ['127.0.0.2', '10.21.0.1', '192.168.0.1'])
      expect(
        refusal(() => q.checkAddress(a, 'h')),
        a,
      ).toMatch(/address/);
    expect(parseAddressRule('::ffff:127.0.0.0/104')[1]).toBe(8);
    expect(() => parseAddressRule('10.0.0.0/33')).toThrow(/not an address or a CIDR/);
  });
});
