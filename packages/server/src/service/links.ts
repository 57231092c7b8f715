/**
 * The URL layout of the session API. Clients never build these (PEP 694: they use the links
 * they are given); this is the one place that does.
 *
 *   POST   {root}                                  create a publishing session
 *   GET    {root}sessions/{session}                status      DELETE: cancel
 *   POST   {root}sessions/{session}/files          create a file upload session (links.upload)
 *   POST   {root}sessions/{session}/publish        publish
 *   POST   {root}sessions/{session}/extend         extend
 *   GET    {root}files/{file}                      file status DELETE: cancel/delete
 *   POST   {root}files/{file}/complete             complete
 *   POST   {root}files/{file}/extend               extend
 *   *      {root}mechanisms/{identifier}/...       the mechanism's own routes
 *
 * With the index enabled (`config.index`), also:
 *
 *   GET    {root}stage/{token}/files/{file}         file status DELETE: cancel/delete (`files[].link`)
 *   GET    {origin}{stagePath}{token}/             the stage preview (`links.stage`), no credentials
 *   GET    {origin}{simplePath}{project}/{filename}   a published file
 */
export class Links {
  readonly root: string;
  constructor(
    readonly origin: string,
    rootPath: string,
  ) {
    this.root = `${origin}${rootPath}`;
  }
  /** PEP 694 `links.stage`: the stage preview's index root, calculable from the session token. */
  stage(stagePath: string, token: string) {
    return `${this.origin}${stagePath}${token}/`;
  }
  /** PEP 694 `files[].link` when previews are supported: the file upload session, under the session token. */
  stagedFile(token: string, fileId: string) {
    return `${this.root}stage/${token}/files/${fileId}`;
  }
  /** Where a published file is downloaded from the published index. */
  publishedFile(simplePath: string, project: string, filename: string) {
    return `${this.origin}${simplePath}${project}/${encodeURIComponent(filename)}`;
  }
  session(id: string) {
    return `${this.root}sessions/${id}`;
  }
  upload(id: string) {
    return `${this.session(id)}/files`;
  }
  publish(id: string) {
    return `${this.session(id)}/publish`;
  }
  extend(id: string) {
    return `${this.session(id)}/extend`;
  }
  file(id: string) {
    return `${this.root}files/${id}`;
  }
  complete(id: string) {
    return `${this.file(id)}/complete`;
  }
  fileExtend(id: string) {
    return `${this.file(id)}/extend`;
  }
  mechanism(identifier: string) {
    return `${this.root}mechanisms/${identifier}`;
  }
}
