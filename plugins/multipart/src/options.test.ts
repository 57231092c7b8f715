/**
 * The plugin manifest: the identifier `vnd-<operator>-multipart` with a required operator (PEP 694
 * "Server Specific File Upload Mechanisms"), options refused when malformed, and the mechanism map.
 */
import { describe, expect, it } from 'vitest';
import { container } from 'tsyringe';
import {
  collectMechanisms,
  DEFAULT_ATTESTATIONS_MAX_BYTES,
  DEFAULT_IDLE_TIMEOUT,
  DEFAULT_LINGER,
  DEFAULT_MIN_RATE,
  MECHANISM_HOST,
  MechanismRegistrationError,
  registerPlugin,
  type MechanismHost,
} from '@pep694/core';
import plugin, { MultipartOptionsSchema, PLUGIN_NAME } from './index.js';

const host = { authorizeTransfer: async () => ({}) as never, sendProblem: () => {}, blobs: {} as never } as unknown as MechanismHost;
function register(options: unknown) {
  const c = container.createChildContainer();
  c.register(MECHANISM_HOST, { useValue: host });
  registerPlugin(c, plugin, options);
  return collectMechanisms(c);
}

describe('PEP 694 Server Specific File Upload Mechanisms: the vnd-<operator>-multipart identifier', () => {
  it('is vnd-<operator>-multipart for the operator the index sets', () => {
    const [m] = register({ operator: 'acme' });
    expect(m?.identifier).toBe('vnd-acme-multipart');
    expect(plugin.name).toBe(PLUGIN_NAME);
  });

  it.each([
    [{}, /operator is required/],
    [{ operator: '' }, /only \[a-z0-9\]/],
    [{ operator: 'Acme' }, /only \[a-z0-9\]/],
    [{ operator: 'acme-corp' }, /only \[a-z0-9\]/],
    [{ operator: 'acme', attestationz: true }, /attestationz/],
    [{ operator: 'acme', cors: { origins: [] } }, /at least one origin/],
    [{ operator: 'acme', cors: { origins: ['https://pypi.example.org/'] } }, /no path or trailing slash/],
    [{ operator: 'acme', cors: { origins: ['pypi.example.org'] } }, /an origin is/],
    [{ operator: 'acme', cors: { origins: '*', credentials: true } }, /credentials cannot be allowed for every origin/],
  ])('refuses the options %j when the plugin registers', (options, why) => {
    expect(() => register(options)).toThrow(MechanismRegistrationError);
    expect(() => register(options)).toThrow(why);
  });

  it('defaults: attestations on (1 MiB), idle timeout 120 s, minimum rate 1 KiB/s, linger 1 MiB / 2 s, CORS off', () => {
    expect(MultipartOptionsSchema.parse({ operator: 'acme' })).toEqual({
      identifier: 'vnd-acme-multipart',
      attestations: true,
      attestationsMaxBytes: DEFAULT_ATTESTATIONS_MAX_BYTES,
      idleTimeout: DEFAULT_IDLE_TIMEOUT,
      minRate: DEFAULT_MIN_RATE,
      linger: DEFAULT_LINGER,
    });
    expect(
      MultipartOptionsSchema.parse({ operator: 'acme', cors: { origins: ['https://pypi.example.org', 'http://localhost:8080'] } }).cors,
    ).toEqual({
      origins: ['https://pypi.example.org', 'http://localhost:8080'],
      credentials: false,
      maxAge: 600,
    });
  });

  it('gives file_url and the field names as its instructions; no attestations_field when attestations are off', async () => {
    const ctx = { baseUrl: 'https://upload.example.org/upload/mechanisms/vnd-acme-multipart', file: { id: 'abc_123' } } as never;
    const [on] = register({ operator: 'acme' });
    expect(await on!.instructions(ctx)).toEqual({
      identifier: 'vnd-acme-multipart',
      file_url: 'https://upload.example.org/upload/mechanisms/vnd-acme-multipart/files/abc_123',
      file_field: 'content',
      attestations_field: 'attestations',
    });
    const [off] = register({ operator: 'acme', attestations: false });
    expect(await off!.instructions(ctx)).not.toHaveProperty('attestations_field');
  });

  it('declines files over maxFileSize at negotiation', async () => {
    const [m] = register({ operator: 'acme', maxFileSize: 100 });
    const offer = { project: 'p', version: '1', filename: 'p-1.tar.gz', hashes: {} };
    expect(await m!.negotiate({ ...offer, size: 100 })).toEqual({ accept: true });
    expect(await m!.negotiate({ ...offer, size: 101 })).toMatchObject({ accept: false, reason: expect.stringMatching(/up to 100 bytes/) });
  });
});
