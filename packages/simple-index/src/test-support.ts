/**
 * Test helpers for the Simple Repository API, shared with the server's end-to-end tests:
 * - the PEP 691 JSON responses as zod schemas, transcribed from PEP 691 "JSON Serialization" with
 *   the keys of PEP 700 (`versions`, `size`, `upload-time`) and PEP 714 (`core-metadata`);
 * - an HTML reader that extracts what pip's collector reads: each `<a>` with its `href`, text and
 *   `data-*` attributes (entities decoded, as an HTML parser does), plus `<meta>` tags.
 */
import { Parser } from 'htmlparser2';
import { z } from 'zod';

const apiVersion = z.string().regex(/^\d+\.\d+$/, 'api-version is Major.Minor');
/** "Additional keys may be added to any dictionary objects ... clients MUST ignore keys they don't understand." */
const meta = z.looseObject({ 'api-version': apiVersion });
const hexDigests = z.record(z.string().regex(/^[a-z0-9_]+$/, 'hash names are lowercase'), z.string().regex(/^[0-9a-f]+$/, 'hex digest'));

/** PEP 691 project list: `{ meta, projects: [{ name }] }`. */
export const ProjectListSchema = z.looseObject({
  meta,
  projects: z.array(z.looseObject({ name: z.string().min(1) })),
});

/** One file of a PEP 691 project page, with PEP 700 and PEP 714 keys. */
export const ProjectFileSchema = z.looseObject({
  filename: z.string().min(1),
  url: z.string().min(1),
  hashes: hexDigests, // MUST be present, even if empty
  'requires-python': z.string().optional(),
  'core-metadata': z.union([z.boolean(), hexDigests]).optional(),
  'dist-info-metadata': z.union([z.boolean(), hexDigests]).optional(),
  'gpg-sig': z.boolean().optional(),
  yanked: z.union([z.boolean(), z.string().min(1)]).optional(),
  size: z.number().int().nonnegative(), // PEP 700: mandatory
  'upload-time': z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/, 'PEP 700: yyyy-mm-ddThh:mm:ss.ffffffZ')
    .optional(),
  provenance: z.string().nullable().optional(),
});

/** PEP 691 project detail, with PEP 700 `versions` (api-version >= 1.1). */
export const ProjectDetailSchema = z
  .looseObject({
    meta,
    name: z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'the normalized project name'),
    files: z.array(ProjectFileSchema),
    versions: z.array(z.string()),
  })
  .superRefine((page, ctx) => {
    if (new Set(page.versions).size !== page.versions.length) ctx.addIssue({ code: 'custom', message: 'versions is a set: no duplicates' });
    const [major = 0, minor = 0] = page.meta['api-version'].split('.').map(Number);
    if (major !== 1 || minor < 1) ctx.addIssue({ code: 'custom', message: 'PEP 700 keys need api-version 1.1 or later' });
  });

export interface Anchor {
  readonly href: string;
  readonly text: string;
  readonly attrs: Readonly<Record<string, string>>;
}

export interface HtmlPage {
  readonly anchors: readonly Anchor[];
  readonly meta: Readonly<Record<string, string>>;
  readonly base?: string;
}

/** Reads a Simple API HTML page the way an installer does (anchors, `<base>`, `<meta name content>`). */
export function readHtml(html: string): HtmlPage {
  const anchors: Anchor[] = [];
  const metaTags: Record<string, string> = {};
  let base: string | undefined;
  let open: { attrs: Record<string, string>; text: string } | undefined;
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'a') open = { attrs, text: '' };
        if (name === 'meta' && attrs['name'] !== undefined && attrs['content'] !== undefined) metaTags[attrs['name']] = attrs['content'];
        if (name === 'base' && attrs['href'] !== undefined && base === undefined) base = attrs['href'];
      },
      ontext(text) {
        if (open) open.text += text;
      },
      onclosetag(name) {
        if (name === 'a' && open) {
          anchors.push({ href: open.attrs['href'] ?? '', text: open.text, attrs: open.attrs });
          open = undefined;
        }
      },
    },
    { decodeEntities: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
  return { anchors, meta: metaTags, ...(base === undefined ? {} : { base }) };
}
