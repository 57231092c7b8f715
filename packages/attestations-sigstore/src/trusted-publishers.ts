/**
 * Trusted publishers: which CI identities may sign attestations for which project. The kinds and
 * their keys are those of PEP 740's publisher objects as PyPI serves them (`GitHub`: repository,
 * workflow, environment; `GitLab`: repository, workflow_filepath, environment). A project may have
 * several. An attestation whose certificate names none of them is rejected, and so is every
 * attestation for a project that has none.
 */
import { z } from 'zod';
import type { AttestationPublisher } from '@pep694/core';
import type { CertificateIdentity } from './identity.js';

const repository = z
  .string()
  .min(3)
  .regex(/^[^/\s]+(?:\/[^/\s]+)+$/, 'repository is "owner/name" (GitLab: "group/…/project")');
const origin = z.url().refine((u) => !u.endsWith('/'), 'no trailing slash');

const GitHubPublisherSchema = z.strictObject({
  kind: z.literal('GitHub'),
  repository,
  /** The workflow file's name under `.github/workflows/` (e.g. `release.yml`). */
  workflow: z.string().regex(/^[^/\s]+\.ya?ml$/, 'workflow is a file name under .github/workflows/, e.g. release.yml'),
  /**
   * The deployment environment the operator expects. Fulcio certificates do not carry it, so it is
   * recorded in the publisher object, not checked (PyPI checks it against the OIDC token at upload).
   */
  environment: z.string().min(1).optional(),
  /** OIDC issuer of the signing certificates (GitHub Enterprise Server differs). */
  issuer: origin.default('https://token.actions.githubusercontent.com'),
  /** Where repositories live (GitHub Enterprise Server differs). */
  host: origin.default('https://github.com'),
});

const GitLabPublisherSchema = z.strictObject({
  kind: z.literal('GitLab'),
  repository,
  /** The CI configuration file's path in the repository (e.g. `.gitlab-ci.yml`). */
  workflow_filepath: z
    .string()
    .min(1)
    .regex(/^[^\s]+\.ya?ml$/, 'workflow_filepath is a YAML path, e.g. .gitlab-ci.yml'),
  environment: z.string().min(1).optional(),
  issuer: origin.default('https://gitlab.com'),
  host: origin.default('https://gitlab.com'),
});

export const TrustedPublisherSchema = z.discriminatedUnion('kind', [GitHubPublisherSchema, GitLabPublisherSchema]);
export type TrustedPublisher = z.infer<typeof TrustedPublisherSchema>;
export type TrustedPublisherInput = z.input<typeof TrustedPublisherSchema>;

/** The file: `{ "projects": { "<project>": [publisher, …] } }`; project names are normalized (PEP 503) on load. */
export const TrustedPublishersFileSchema = z.strictObject({
  projects: z.record(z.string().min(1), z.array(TrustedPublisherSchema)),
});
export type TrustedPublishersConfig = z.infer<typeof TrustedPublishersFileSchema>;
export type TrustedPublishersInput = z.input<typeof TrustedPublishersFileSchema>;

/** PEP 503 normalization. */
export const normalizeProject = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

/** Where trusted publishers come from: a fixed list, or a file re-read on change. */
export interface TrustedPublisherSource {
  /** The publishers of `project` (any spelling); empty when it has none. */
  publishersOf(project: string): readonly TrustedPublisher[];
}

/** Publishers held in memory. */
export class StaticTrustedPublishers implements TrustedPublisherSource {
  private readonly byProject: Map<string, readonly TrustedPublisher[]>;
  constructor(config: TrustedPublishersInput) {
    this.byProject = indexByProject(TrustedPublishersFileSchema.parse(config));
  }
  publishersOf(project: string): readonly TrustedPublisher[] {
    return this.byProject.get(normalizeProject(project)) ?? [];
  }
}

export function indexByProject(config: TrustedPublishersConfig): Map<string, readonly TrustedPublisher[]> {
  const map = new Map<string, TrustedPublisher[]>();
  for (const [name, publishers] of Object.entries(config.projects)) {
    const key = normalizeProject(name);
    map.set(key, [...(map.get(key) ?? []), ...publishers]);
  }
  return map;
}

const sameRepository = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b.toLowerCase();
const startsWithIgnoringCase = (s: string | undefined, prefix: string) =>
  s !== undefined && s.toLowerCase().startsWith(prefix.toLowerCase());

/**
 * Whether `identity` is `publisher`'s: the issuer, the source repository, and the build
 * configuration (the top-level workflow, `Build Config URI`; for a reusable GitHub workflow the SAN
 * names the called one) of that repository, at any ref. Repository names compare case-insensitively,
 * as GitHub and GitLab resolve them.
 */
export function matches(publisher: TrustedPublisher, identity: CertificateIdentity): boolean {
  const { claims } = identity;
  if (claims.issuer !== publisher.issuer) return false;
  const repoUri = `${publisher.host}/${publisher.repository}`;
  if (!sameRepository(claims.sourceRepositoryURI, repoUri)) return false;
  const config =
    publisher.kind === 'GitHub' ? `${repoUri}/.github/workflows/${publisher.workflow}@` : `${repoUri}//${publisher.workflow_filepath}@`;
  const buildConfig = claims.buildConfigURI ?? identity.subjectAlternativeName;
  return startsWithIgnoringCase(buildConfig, config);
}

/** The PEP 740 publisher object served in provenance for an attestation `publisher` signed. */
export function publisherObject(publisher: TrustedPublisher, identity: CertificateIdentity): AttestationPublisher {
  const claims = {
    ...(identity.claims.sourceRepositoryRef !== undefined ? { ref: identity.claims.sourceRepositoryRef } : {}),
    ...(identity.claims.sourceRepositoryDigest !== undefined ? { sha: identity.claims.sourceRepositoryDigest } : {}),
  };
  return publisher.kind === 'GitHub'
    ? { kind: 'GitHub', repository: publisher.repository, workflow: publisher.workflow, environment: publisher.environment ?? null, claims }
    : {
        kind: 'GitLab',
        repository: publisher.repository,
        workflow_filepath: publisher.workflow_filepath,
        environment: publisher.environment ?? null,
        claims,
      };
}
