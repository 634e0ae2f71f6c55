/**
 * `tsbuild history --format json`: one JSON object per line, newest first, with the
 * keys `docker history --format json` prints (Comment, CreatedAt, CreatedBy,
 * CreatedSince, ID, Size — strings, truncated unless --no-trunc) plus tsbuild's
 * SizeBytes (number) and Tags (array). Keys in Go's sorted order.
 */
import { ago, ellipsis, humanSize, shortId } from '../cli/dockerfmt.js';

export interface HistoryJsonRow {
  id: string;
  created: string;
  createdBy: string;
  size: number;
  comment: string;
  tags: string[];
}

export function historyJsonLines(rows: readonly HistoryJsonRow[], trunc: boolean, now = Date.now()): string {
  return rows
    .map((r) => {
      const createdBy = r.createdBy.replace(/\t/g, ' ');
      return (
        JSON.stringify({
          Comment: r.comment,
          CreatedAt: r.created,
          CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
          CreatedSince: ago(r.created, now),
          ID: r.id === '<missing>' || !trunc ? r.id : shortId(r.id),
          Size: humanSize(r.size),
          SizeBytes: r.size,
          Tags: r.tags,
        }) + '\n'
      );
    })
    .join('');
}
