// Shapes the API's usage report for charts and tables: the API lists only buckets that had
// requests; a chart needs every bucket of the range, in order, with zeros in the gaps.
import type { Granularity, UsageNumbers, UsageReport } from "./schemas";

export const EMPTY: UsageNumbers = {
  requests: 0,
  failovers: 0,
  bedrock_direct: 0,
  input_tokens: 0,
  output_tokens: 0,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  cost_micro_usd: 0,
};

export interface UsageRow extends UsageNumbers {
  /** Bucket start, epoch milliseconds (UTC). */
  t: number;
}

/** The start of the UTC bucket holding `ms`. Buckets are UTC, as the API makes them. */
export function bucketStart(ms: number, g: Granularity): number {
  const d = new Date(ms);
  switch (g) {
    case "hour":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
    case "day":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case "month":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
}

export function nextBucket(ms: number, g: Granularity): number {
  const d = new Date(ms);
  switch (g) {
    case "hour":
      return ms + 3_600_000;
    case "day":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
    case "month":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
}

/** Most buckets a chart draws; a longer range is drawn as it came (no filling). */
export const MAX_BUCKETS = 2_000;

/** Requests Plan answered alone: neither failed over nor sent straight to Bedrock. */
export function planOnly(n: UsageNumbers): number {
  return n.requests - n.failovers - n.bedrock_direct;
}

function numbersOf(point: UsageNumbers): UsageNumbers {
  const n = { ...EMPTY };
  for (const k of Object.keys(EMPTY) as (keyof UsageNumbers)[]) n[k] = point[k];
  return n;
}

/** Every bucket from `from` to `to` (exclusive), the report's numbers where it had any. */
export function fillSeries(report: UsageReport): UsageRow[] {
  const g = report.granularity;
  const byBucket = new Map<number, UsageNumbers>();
  for (const point of report.series) {
    byBucket.set(bucketStart(Date.parse(point.bucket), g), numbersOf(point));
  }
  const start = bucketStart(Date.parse(report.from), g);
  const end = Date.parse(report.to);
  const rows: UsageRow[] = [];
  for (let t = start; t < end; t = nextBucket(t, g)) {
    if (rows.length >= MAX_BUCKETS) {
      return [...byBucket.entries()].sort(([a], [b]) => a - b).map(([t, n]) => ({ t, ...n }));
    }
    rows.push({ t, ...(byBucket.get(t) ?? EMPTY) });
  }
  return rows;
}

/** Sums rows (a check on the API's totals, and totals for a filtered view). */
export function sumRows(rows: UsageNumbers[]): UsageNumbers {
  const total = { ...EMPTY };
  for (const r of rows) {
    for (const k of Object.keys(EMPTY) as (keyof UsageNumbers)[]) total[k] += r[k];
  }
  return total;
}

/** CSV of the rows, bucket in ISO form; fields never need quoting (numbers and ISO dates). */
export function toCsv(rows: UsageRow[]): string {
  const cols = Object.keys(EMPTY) as (keyof UsageNumbers)[];
  const lines = [["bucket_utc", ...cols].join(",")];
  for (const r of rows) lines.push([new Date(r.t).toISOString(), ...cols.map((c) => r[c])].join(","));
  return lines.join("\n") + "\n";
}

/** A report grouped by key: every bucket, with one value per key (`pick` of its numbers,
 * `{ t, [keyId]: value }`), for a chart with a series per key. */
export function seriesByKey(
  report: UsageReport,
  pick: (n: UsageNumbers) => number,
): { rows: ({ t: number } & Record<string, number>)[]; keys: string[] } {
  const g = report.granularity;
  const keys = [...new Set(report.series.map((p) => p.key_id).filter((k): k is string => !!k))];
  const frame = fillSeries({ ...report, series: [] });
  const index = new Map(frame.map((r, i) => [r.t, i]));
  const rows = frame.map((r) => {
    const row: { t: number } & Record<string, number> = { t: r.t } as { t: number } & Record<string, number>;
    for (const k of keys) row[k] = 0;
    return row;
  });
  for (const p of report.series) {
    const i = index.get(bucketStart(Date.parse(p.bucket), g));
    const row = i === undefined ? undefined : rows[i];
    if (row && p.key_id) row[p.key_id] = (row[p.key_id] ?? 0) + pick(p);
  }
  return { rows, keys };
}
