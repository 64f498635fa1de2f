import { describe, expect, it } from "vitest";
import { formatCount, formatInstant, formatMicroUsd, formatPercent } from "@/lib/format";
import type { UsageReport } from "@/lib/schemas";
import { EMPTY, fillSeries, planOnly, seriesByKey, sumRows, toCsv } from "@/lib/usage";

const point = (bucket: string, requests: number, cost = 0) => ({ ...EMPTY, bucket, requests, cost_micro_usd: cost });

function report(over: Partial<UsageReport>): UsageReport {
  return {
    from: "2026-11-01T00:00:00Z",
    to: "2026-11-05T00:00:00Z",
    granularity: "day",
    series: [],
    totals: { ...EMPTY },
    ...over,
  };
}

describe("fillSeries", () => {
  it("fills the days without requests with zeros, in order", () => {
    const rows = fillSeries(
      report({ series: [point("2026-11-04T00:00:00Z", 3), point("2026-11-02T00:00:00Z", 5)] }),
    );
    expect(rows.map((r) => [new Date(r.t).toISOString().slice(0, 10), r.requests])).toEqual([
      ["2026-11-01", 0],
      ["2026-11-02", 5],
      ["2026-11-03", 0],
      ["2026-11-04", 3],
    ]);
  });

  it("starts at the bucket holding `from` when `from` is mid-bucket", () => {
    const rows = fillSeries(
      report({
        from: "2026-11-01T10:30:00Z",
        to: "2026-11-01T13:00:00Z",
        granularity: "hour",
        series: [point("2026-11-01T10:00:00Z", 1)],
      }),
    );
    expect(rows.map((r) => new Date(r.t).toISOString().slice(11, 16))).toEqual(["10:00", "11:00", "12:00"]);
    expect(rows[0]?.requests).toBe(1);
  });

  it("steps months by the calendar, across a year end", () => {
    const rows = fillSeries(
      report({ from: "2026-11-15T00:00:00Z", to: "2027-02-01T00:00:00Z", granularity: "month" }),
    );
    expect(rows.map((r) => new Date(r.t).toISOString().slice(0, 7))).toEqual(["2026-11", "2026-12", "2027-01"]);
  });

  it("keeps the totals: the filled rows sum to what the API reported", () => {
    const series = [point("2026-11-02T00:00:00Z", 5, 1_250), point("2026-11-03T00:00:00Z", 2, 750)];
    const rows = fillSeries(report({ series }));
    expect(sumRows(rows)).toEqual({ ...EMPTY, requests: 7, cost_micro_usd: 2_000 });
  });

  it("gives up filling a range too long to draw and keeps the real points", () => {
    const rows = fillSeries(
      report({
        from: "2020-01-01T00:00:00Z",
        to: "2026-01-01T00:00:00Z",
        granularity: "hour",
        series: [point("2025-06-01T05:00:00Z", 4), point("2021-03-01T00:00:00Z", 1)],
      }),
    );
    expect(rows.map((r) => r.requests)).toEqual([1, 4]);
  });
});

describe("paths and keys", () => {
  it("counts Plan-only requests as those neither failed over nor sent to Bedrock directly", () => {
    expect(planOnly({ ...EMPTY, requests: 10, failovers: 3, bedrock_direct: 2 })).toBe(5);
  });

  it("spreads a per-key report into one column per key, zeros where a key was idle", () => {
    const a = "0190f0a0-0000-7000-8000-00000000000a";
    const b = "0190f0a0-0000-7000-8000-00000000000b";
    const grouped = report({
      from: "2026-11-01T00:00:00Z",
      to: "2026-11-04T00:00:00Z",
      series: [
        { ...point("2026-11-01T00:00:00Z", 2), key_id: a },
        { ...point("2026-11-01T00:00:00Z", 1), key_id: b },
        { ...point("2026-11-03T00:00:00Z", 4), key_id: b },
      ],
    });
    const { rows, keys } = seriesByKey(grouped, (n) => n.requests);
    expect(keys).toEqual([a, b]);
    expect(rows.map((r) => [r[a], r[b]])).toEqual([
      [2, 1],
      [0, 0],
      [0, 4],
    ]);
  });
});

describe("CSV export", () => {
  it("has a header and one line a bucket, UTC instants", () => {
    const rows = fillSeries(report({ series: [point("2026-11-02T00:00:00Z", 5, 42)] })).filter((r) => r.requests);
    expect(toCsv(rows)).toBe(
      "bucket_utc,requests,failovers,bedrock_direct,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cost_micro_usd\n" +
        "2026-11-02T00:00:00.000Z,5,0,0,0,0,0,0,42\n",
    );
  });
});

describe("formatting for people", () => {
  it("counts", () => {
    expect(formatCount(950)).toBe("950");
    expect(formatCount(9_999)).toBe("9,999");
    expect(formatCount(1_234_567)).toBe("1.2M");
  });
  it("money from micro-USD", () => {
    expect(formatMicroUsd(3_410_000)).toBe("$3.41");
    expect(formatMicroUsd(4_200)).toBe("$0.0042");
    expect(formatMicroUsd(0)).toBe("$0.00");
  });
  it("rates", () => {
    expect(formatPercent(1, 8)).toBe("12.5 %");
    expect(formatPercent(0, 0)).toBe("–");
  });
  it("instants in the chosen time zone", () => {
    expect(formatInstant("2026-11-28T23:30:00Z", "UTC")).toBe("2026-11-28 23:30");
    expect(formatInstant("2026-11-28T23:30:00Z", "Europe/Berlin")).toBe("2026-11-29 00:30");
    expect(formatInstant("2026-07-01T12:00:00Z", "America/New_York")).toBe("2026-07-01 08:00");
    expect(formatInstant(null, "UTC")).toBe("–");
  });
});
