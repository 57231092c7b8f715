// Types of scripts/pack.mjs, for the tests that import it.
/** A package.json, as far as the pack check reads it. */
export interface Manifest {
  readonly name?: string;
  readonly version?: string;
  readonly private?: boolean;
  readonly files?: readonly string[];
  readonly [field: string]: unknown;
}
export interface WorkspacePackage {
  readonly dir: string;
  readonly manifest: Manifest;
}
export interface PackedPackage {
  readonly name: string;
  readonly version: string;
  readonly tarball: string;
}
export function workspacePackages(root?: string): WorkspacePackage[];
export function manifestProblems(manifest: Manifest, entries: readonly string[]): string[];
export function readTarball(tarball: string): { manifest: Manifest; entries: string[] };
export function pnpmCommand(root?: string): string[];
export function packAll(opts?: { root?: string; into?: string }): PackedPackage[];
