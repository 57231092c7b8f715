/**
 * What the user sees while files go up. On a terminal: one cli-progress bar per file plus a total
 * (redrawn in place, throttled by cli-progress); elsewhere (CI logs, pipes): plain lines, one when
 * a file starts, at each quarter, and when it is done, so logs stay short and readable.
 */
import type cliProgress from 'cli-progress';
import type { UploadEvent } from '../upload.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

export type FlowEvent = UploadEvent | { type: 'legacy'; reason: string } | { type: 'test-output'; line: string };

export interface Renderer {
  event(e: FlowEvent): void;
  /** A message line that must not tear a bar. */
  log(line: string): void;
  stop(): void;
}

/** Nothing on stdout (`--json`): messages go to stderr. */
export class QuietRenderer implements Renderer {
  event(e: FlowEvent): void {
    if (e.type === 'notice') process.stderr.write(`notice: ${e.message}\n`);
    if (e.type === 'legacy') process.stderr.write(`${e.reason}\n`);
  }
  log(line: string): void {
    process.stderr.write(`${line}\n`);
  }
  stop(): void {}
}

/** Shared wording of the events both renderers print as lines. */
function describe(e: FlowEvent): string | undefined {
  switch (e.type) {
    case 'session':
      return `${e.joined ? 'Joined the open' : 'Created a'} session for ${e.release.name} ${e.release.version}${e.localId ? ` (local id ${e.localId})` : ''}: ${e.session.links.session}`;
    case 'file-skipped':
      return `${e.filename}: ${e.reason}, skipped`;
    case 'notice':
      return `notice: ${e.message}`;
    case 'extended':
      return e.filename ? `${e.filename}: file upload session extended to ${e.expiresAt}` : `session extended to ${e.expiresAt}`;
    case 'testing':
      return `Installing from the stage to test: ${e.stageUrl}`;
    case 'test-output':
      return `  | ${e.line}`;
    case 'published':
      return undefined;
    case 'canceled':
      return `Canceled the session ${e.sessionUrl}`;
    case 'legacy':
      return e.reason;
    default:
      return undefined;
  }
}

export class LineRenderer implements Renderer {
  private readonly steps = new Map<string, number>();

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  log(line: string): void {
    this.out.write(`${line}\n`);
  }

  event(e: FlowEvent): void {
    const line = describe(e);
    if (line !== undefined) return this.log(line);
    if (e.type === 'file-start') {
      this.steps.set(e.filename, 0);
      this.log(`${e.filename}: ${e.resuming ? 'resuming' : 'uploading'} ${formatBytes(e.size)} with ${e.mechanism}`);
    } else if (e.type === 'progress') {
      const step = e.total === 0 ? 4 : Math.floor((e.sent / e.total) * 4);
      const shown = this.steps.get(e.filename) ?? 0;
      // Within one try the bytes only grow: fewer is a transfer tried again, whose quarters are news.
      if (step < shown) this.steps.set(e.filename, step);
      else if (step > shown && step < 4) {
        this.steps.set(e.filename, step);
        this.log(`${e.filename}: ${step * 25}% (${formatBytes(e.sent)} of ${formatBytes(e.total)})`);
      }
    } else if (e.type === 'file-done') {
      const r = e.result;
      const resumed = r.resumedFrom > 0 ? `, resumed at ${formatBytes(r.resumedFrom)}` : '';
      const att = r.attestations > 0 ? `, ${r.attestations} attestation(s)` : '';
      this.log(`${e.filename}: completed (${formatBytes(r.bytesSent)} sent${resumed}${att})`);
    }
  }

  stop(): void {}
}

/** One bar per file plus a total, redrawn in place on a terminal. */
export class BarRenderer implements Renderer {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  private total: cliProgress.SingleBar | undefined;
  private readonly sent = new Map<string, number>();
  private grand = 0;

  /** `lib`: the cli-progress module, loaded only when output is a terminal (`BarRenderer.create`). */
  private constructor(lib: typeof cliProgress) {
    this.multi = new lib.MultiBar(
      {
        format: ' {bar} {percentage}% | {label} | {done} of {size}',
        barCompleteChar: '█',
        barIncompleteChar: '░',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        fps: 10,
      },
      lib.Presets.shades_classic,
    );
  }

  static async create(): Promise<BarRenderer> {
    const lib = (await import('cli-progress')).default;
    return new BarRenderer(lib);
  }

  log(line: string): void {
    this.multi.log(`${line}\n`);
  }

  private ensureTotal(): cliProgress.SingleBar {
    this.total ??= this.multi.create(0, 0, { label: 'total', done: formatBytes(0), size: formatBytes(0) });
    return this.total;
  }

  private addSize(size: number) {
    this.grand += size;
    const t = this.ensureTotal();
    t.setTotal(this.grand);
    this.refreshTotal();
  }

  private refreshTotal() {
    const sum = [...this.sent.values()].reduce((a, b) => a + b, 0);
    this.total?.update(sum, { label: 'total', done: formatBytes(sum), size: formatBytes(this.grand) });
  }

  event(e: FlowEvent): void {
    const line = describe(e);
    if (line !== undefined) {
      if (e.type === 'file-skipped') {
        this.sent.set(e.filename, e.size);
        this.addSize(e.size);
      }
      return this.log(line);
    }
    if (e.type === 'file-start') {
      this.ensureTotal();
      const bar = this.multi.create(e.size, 0, {
        label: `${e.filename} (${e.mechanism})`,
        done: formatBytes(0),
        size: formatBytes(e.size),
      });
      this.bars.set(e.filename, bar);
      this.sent.set(e.filename, 0);
      this.addSize(e.size);
    } else if (e.type === 'progress') {
      this.bars.get(e.filename)?.update(e.sent, { done: formatBytes(e.sent) });
      this.sent.set(e.filename, e.sent);
      this.refreshTotal();
    } else if (e.type === 'file-done') {
      const bar = this.bars.get(e.filename);
      bar?.update(e.result.size, { done: formatBytes(e.result.size), label: `${e.filename} ✓` });
      this.sent.set(e.filename, e.result.size);
      this.refreshTotal();
    }
  }

  stop(): void {
    this.multi.stop();
  }
}
