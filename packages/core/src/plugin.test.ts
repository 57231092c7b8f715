import { readFileSync } from 'node:fs';
import { container as rootContainer, instanceCachingFactory } from 'tsyringe';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  checkMechanismIdentifier,
  MechanismRegistrationError,
  vendorIdentifier,
  type MechanismIdentifier,
  type UploadMechanism,
} from './mechanism.js';
import { collectMechanisms, definePlugin, registerPlugin } from './plugin.js';
import { MECHANISM } from './tokens.js';
import { CORE_VERSION } from './version.js';

describe('PEP 694 Server Specific File Upload Mechanisms: identifier rules', () => {
  it.each([
    'http-post-bytes',
    'vnd-pypi-s3multipart-presigned',
    'vnd-pypi-s3multipart-presigned-v2',
    'vnd-pypi-http-fetch',
    'vnd-acmecorp-http-fetch',
    'vnd-acmecorp-postal',
    'vnd-widgetinc-stream-v1',
    'vnd-widgetinc-stream-v2',
    'vnd-madscience-quantumentanglement',
    'vnd-acme-tus',
  ])('accepts %s (the PEP table and our plugins)', (id) => {
    expect(checkMechanismIdentifier(id).ok).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['tus', 'vnd'],
    ['http-post-application-octet-stream', 'vnd'],
    ['vnd-acme', 'three parts'],
    ['vnd--tus', 'three parts'],
    ['vnd-Acme-tus', 'operator'],
    ['vnd-ac_me-tus', 'operator'],
    ['vnd-acme-Tus', 'implementation'],
    ['vnd-acme-tus-', 'implementation'],
    ['vnd-acme-tus--v2', 'implementation'],
    ['vnd-acme-tus.v2', 'implementation'],
    ['VND-acme-tus', 'vnd'],
    ['vnd-acme-tüs', 'implementation'],
  ])('refuses %j and says why (%s)', (id, why) => {
    const check = checkMechanismIdentifier(id);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).toContain(why);
  });

  it('splits vendor identifiers into operator, implementation and version suffix', () => {
    expect(checkMechanismIdentifier('vnd-widgetinc-stream-v2')).toEqual({
      ok: true,
      kind: 'vendor',
      operator: 'widgetinc',
      implementation: 'stream-v2',
      version: 2,
    });
    expect(vendorIdentifier('acme', 'tus')).toBe('vnd-acme-tus');
    expect(() => vendorIdentifier('ACME', 'tus')).toThrowError(MechanismRegistrationError);
  });
});

function fakeMechanism(identifier: string): UploadMechanism {
  // A registration-only stand-in: these tests exercise the manifest checks, not transfers.
  const never = () => Promise.reject(new Error('not used in registration tests'));
  return {
    identifier: identifier as MechanismIdentifier,
    negotiate: () => ({ accept: true }),
    instructions: never,
    completion: never,
    status: never,
  };
}

const plugin = definePlugin({
  name: '@example/mechanism-test',
  coreRange: '^0.1.0',
  options: z.object({ operator: z.string().regex(/^[a-z0-9]+$/), implementation: z.string().default('test') }),
  register(container, options) {
    const m = fakeMechanism(`vnd-${options.operator}-${options.implementation}`);
    container.register(MECHANISM, { useFactory: instanceCachingFactory(() => m) });
  },
});

describe('plugin manifest and registration', () => {
  it('registers a plugin and collects its mechanisms in registration order', () => {
    const c = rootContainer.createChildContainer();
    registerPlugin(c, plugin, { operator: 'acme' });
    registerPlugin(c, plugin, { operator: 'acme', implementation: 'other' });
    expect(collectMechanisms(c).map((m) => m.identifier)).toEqual(['vnd-acme-test', 'vnd-acme-other']);
  });
  it('refuses a duplicate identifier at registration', () => {
    const c = rootContainer.createChildContainer();
    registerPlugin(c, plugin, { operator: 'acme' });
    expect(() => registerPlugin(c, plugin, { operator: 'acme' })).toThrowError(/registered twice/);
  });
  it('refuses a malformed identifier at registration, saying why', () => {
    const c = rootContainer.createChildContainer();
    const bad = definePlugin({
      ...plugin,
      options: z.object({}),
      register: (cc) => cc.register(MECHANISM, { useValue: fakeMechanism('tus') }),
    });
    expect(() => registerPlugin(c, bad, {})).toThrowError(/@example\/mechanism-test: mechanism identifier refused: .*vnd/);
  });
  it('refuses invalid options with the option path', () => {
    const c = rootContainer.createChildContainer();
    expect(() => registerPlugin(c, plugin, {})).toThrowError(/invalid options: options\.operator/);
    expect(() => registerPlugin(c, plugin, { operator: 'Not Valid' })).toThrowError(MechanismRegistrationError);
  });
  it('refuses a plugin built for another core range', () => {
    const c = rootContainer.createChildContainer();
    expect(() => registerPlugin(c, { ...plugin, coreRange: '^9.0.0' }, { operator: 'acme' })).toThrowError(
      /supports @pep694\/core \^9\.0\.0/,
    );
    expect(() => registerPlugin(c, { ...plugin, coreRange: 'not a range' }, { operator: 'acme' })).toThrowError(/not a semver range/);
  });
  it('collects nothing from an empty container', () => {
    expect(collectMechanisms(rootContainer.createChildContainer())).toEqual([]);
  });
  it('CORE_VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(CORE_VERSION).toBe(pkg.version);
  });
});
