import type { Command } from 'commander';
import { TsbuildError } from '../../errors.js';
import { chainIdOf, type ChainId } from '../../image/digest.js';
import { ImageStore } from '../../store/store.js';
import { ago, ellipsis, humanSize, shortId, tabwrite } from '../dockerfmt.js';
import { defaultRoot } from '../root.js';

export interface HistoryRow {
  id: string;
  created: string;
  createdBy: string;
  size: number;
  comment: string;
  tags: string[];
}

/** docker history: newest first, image IDs along the metadata/parent chain, `<missing>` beyond it. */
export async function imageHistory(store: ImageStore, ref: string): Promise<HistoryRow[]> {
  const image = await store.require(ref);
  const rows: HistoryRow[] = [];
  let layer = 0;
  let chain: ChainId | null = null;
  for (const h of image.config.history ?? []) {
    let size = 0;
    if (!h.empty_layer) {
      const diffId = image.config.rootfs.diff_ids[layer];
      if (diffId === undefined) throw new TsbuildError('BAD_IMAGE', 'too many non-empty layers in History section');
      chain = chainIdOf(chain, diffId);
      size = (await store.layers.get(chain))?.size ?? 0;
      layer++;
    }
    rows.unshift({ id: '<missing>', created: h.created, createdBy: h.created_by ?? '', size, comment: h.comment ?? '', tags: [] });
  }
  let current: typeof image | undefined = image;
  for (const row of rows) {
    if (!current) break;
    row.id = current.id;
    row.tags = await store.referencesOf(current.id);
    current = current.parent ? await store.images.get(current.parent) : undefined;
  }
  return rows;
}

const FIELDS: Record<string, (r: HistoryRow, trunc: boolean) => string> = {
  ID: (r, trunc) => (r.id === '<missing>' || !trunc ? r.id : shortId(r.id)),
  CreatedSince: (r) => ago(r.created),
  CreatedAt: (r) => r.created,
  CreatedBy: (r, trunc) => (trunc ? ellipsis(r.createdBy.replace(/\t/g, ' '), 45) : r.createdBy.replace(/\t/g, ' ')),
  Size: (r) => humanSize(r.size),
  Comment: (r) => r.comment,
};

/** The subset of Go templates docker users pass to --format: `{{.Field}}` and `\t`. */
export function renderTemplate(template: string, row: HistoryRow, trunc: boolean): string {
  return template.replace(/\\t/g, '\t').replace(/\{\{\s*\.(\w+)\s*\}\}/g, (m, field: string) => {
    const f = FIELDS[field];
    if (!f) throw new TsbuildError('USAGE', `template: unknown field ${field}`);
    return f(row, trunc);
  });
}

export function register(cli: Command): void {
  cli
    .command('history <image>')
    .description('show the history of an image (like docker history)')
    .option('--root <dir>', 'store root', defaultRoot())
    .option('--no-trunc', "don't truncate output")
    .option('-H, --human <bool>', 'print sizes and dates in human readable format', 'true')
    .option('-q, --quiet', 'only show image IDs')
    .option('--format <template>', 'Go-template subset: {{.ID}} {{.CreatedSince}} {{.CreatedBy}} {{.Size}} {{.Comment}}')
    .action(async (ref: string, opts: { root: string; trunc: boolean; quiet?: boolean; format?: string }) => {
      const store = await ImageStore.open(opts.root);
      const rows = await imageHistory(store, ref);
      if (opts.quiet) {
        process.stdout.write(rows.map((r) => FIELDS['ID']!(r, opts.trunc) + '\n').join(''));
      } else if (opts.format === 'json') { process.stdout.write((await import('../../analyze/history-json.js')).historyJsonLines(rows, opts.trunc));
      } else if (opts.format !== undefined) {
        process.stdout.write(rows.map((r) => renderTemplate(opts.format!, r, opts.trunc) + '\n').join(''));
      } else {
        const table = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows.map((r) => ['ID', 'CreatedSince', 'CreatedBy', 'Size', 'Comment'].map((f) => FIELDS[f]!(r, opts.trunc)))];
        process.stdout.write(tabwrite(table));
      }
    });
}
