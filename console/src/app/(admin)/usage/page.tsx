import type { Metadata } from "next";
import { Banner, Button, Card, Empty, Field, PageTitle, Select, Table } from "@/components/ui";
import { formatCount, formatInstant, formatMicroUsd, formatPercent } from "@/lib/format";
import { load } from "@/lib/load";
import Link from "next/link";
import { granularity as granularitySchema, usageReport, usageTop, type UsageTop } from "@/lib/schemas";
import { authed } from "@/lib/session";
import { displayTimeZone } from "@/lib/settings";
import { fillSeries, toCsv } from "@/lib/usage";
import { UsageChart } from "./chart";
import { CsvDownload } from "./csv";

export const metadata: Metadata = { title: "Usage" };

type Search = Record<"from" | "to" | "granularity" | "user" | "key" | "model" | "provider", string | undefined>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The filters from the URL, each checked; a bad one is dropped, not sent. */
function filters(q: Search) {
  const g = granularitySchema.safeParse(q.granularity);
  return {
    from: q.from && DAY.test(q.from) ? q.from : undefined,
    to: q.to && DAY.test(q.to) ? q.to : undefined,
    granularity: g.success ? g.data : "day",
    user: q.user && UUID.test(q.user) ? q.user : undefined,
    key: q.key && UUID.test(q.key) ? q.key : undefined,
    model: q.model?.slice(0, 200) || undefined,
    provider: q.provider === "plan" || q.provider === "bedrock" ? q.provider : undefined,
  };
}

export default async function UsagePage({ searchParams }: { searchParams: Promise<Search> }) {
  const f = filters(await searchParams);
  const tz = displayTimeZone();
  const range = {
    from: f.from ? `${f.from}T00:00:00Z` : undefined,
    // The whole "to" day is included.
    to: f.to ? new Date(Date.parse(`${f.to}T00:00:00Z`) + 86_400_000).toISOString() : undefined,
    user: f.user,
    key: f.key,
    model: f.model,
    provider: f.provider,
  };
  // One round of calls, in parallel: the series and the three top lists.
  const top = (by: "user" | "key" | "model") =>
    load(authed("GET", "/admin/usage/top", usageTop, { query: { ...range, by, limit: 10 } }));
  const [result, users, keys, models] = await Promise.all([
    load(authed("GET", "/admin/usage", usageReport, { query: { ...range, granularity: f.granularity } })),
    top("user"),
    top("key"),
    top("model"),
  ]);
  return (
    <>
      <PageTitle>Usage</PageTitle>
      <div className="flex flex-col gap-6">
        <form method="get" className="grid gap-3 sm:grid-cols-4 lg:grid-cols-8 lg:items-end" aria-label="Usage filters">
          <Field id="u-from" type="date" label="From (UTC)" name="from" defaultValue={f.from ?? ""} />
          <Field id="u-to" type="date" label="To (UTC)" name="to" defaultValue={f.to ?? ""} />
          <Select
            label="Per"
            name="granularity"
            defaultValue={f.granularity}
            options={[
              { value: "hour", label: "Hour" },
              { value: "day", label: "Day" },
              { value: "month", label: "Month" },
            ]}
          />
          <Field id="u-user" label="User id" name="user" defaultValue={f.user ?? ""} />
          <Field id="u-key" label="Key id" name="key" defaultValue={f.key ?? ""} />
          <Field id="u-model" label="Model" name="model" defaultValue={f.model ?? ""} maxLength={200} />
          <Select
            label="Upstream"
            name="provider"
            defaultValue={f.provider ?? ""}
            options={[
              { value: "", label: "Any" },
              { value: "plan", label: "Anthropic (Plan)" },
              { value: "bedrock", label: "Bedrock" },
            ]}
          />
          <Button type="submit" variant="secondary">
            Apply
          </Button>
        </form>
        {!result.ok ? (
          <Banner>{result.error.message}</Banner>
        ) : (
          <>
            <Report report={result.data} tz={tz} />
            {result.data.totals.requests > 0 ? (
              <div className="grid gap-6">
                <TopTable title="Top users" loaded={users} link={(i) => (i.id ? `/users/${i.id}` : undefined)} />
                <TopTable title="Top keys" loaded={keys} link={(i) => (i.detail ? `/users/${i.detail}` : undefined)} />
                <TopTable title="Top models" loaded={models} link={() => undefined} />
              </div>
            ) : null}
          </>
        )}
      </div>
    </>
  );
}

function Report({ report, tz }: { report: import("@/lib/schemas").UsageReport; tz: string }) {
  const rows = fillSeries(report);
  const t = report.totals;
  const labels = rows.map((r) => formatInstant(new Date(r.t).toISOString(), tz).slice(0, report.granularity === "hour" ? 16 : report.granularity === "day" ? 10 : 7));
  return (
    <>
      <p className="text-sm text-slate-600">
        {formatInstant(report.from, tz)} to {formatInstant(report.to, tz)} ({tz}); buckets are UTC {report.granularity}s.
      </p>
      <dl className="grid grid-cols-2 gap-3 lg:grid-cols-6">
        <Stat label="Requests" value={formatCount(t.requests)} />
        <Stat label="Failover rate" value={formatPercent(t.failovers, t.requests)} />
        <Stat label="Bedrock direct" value={formatCount(t.bedrock_direct)} />
        <Stat label="Input tokens" value={formatCount(t.input_tokens)} />
        <Stat label="Output tokens" value={formatCount(t.output_tokens)} />
        <Stat label="Est. Bedrock cost" value={formatMicroUsd(t.cost_micro_usd)} />
      </dl>
      {t.requests === 0 ? (
        <Empty>No requests in this range.</Empty>
      ) : (
        <>
          <Card title="Over time">
            <UsageChart rows={rows} labels={labels} />
          </Card>
          <div className="flex items-center justify-between">
            <h2 className="text-base font-semibold">Buckets with requests</h2>
            <CsvDownload csv={toCsv(rows.filter((r) => r.requests > 0))} filename="ccp-usage.csv" />
          </div>
          <Table label="Usage by bucket" head={[`Bucket (${tz})`, "Requests", "Failovers", "Bedrock direct", "Input", "Output", "Cache read", "Cache write", "Est. cost"]}>
            {rows
              .map((r, i) => ({ r, label: labels[i] }))
              .filter(({ r }) => r.requests > 0)
              .map(({ r, label }) => (
                <tr key={r.t} className="tabular-nums">
                  <td className="px-3 py-2">{label}</td>
                  <td className="px-3 py-2">{formatCount(r.requests)}</td>
                  <td className="px-3 py-2">{formatCount(r.failovers)}</td>
                  <td className="px-3 py-2">{formatCount(r.bedrock_direct)}</td>
                  <td className="px-3 py-2">{formatCount(r.input_tokens)}</td>
                  <td className="px-3 py-2">{formatCount(r.output_tokens)}</td>
                  <td className="px-3 py-2">{formatCount(r.cache_read_tokens)}</td>
                  <td className="px-3 py-2">{formatCount(r.cache_write_tokens)}</td>
                  <td className="px-3 py-2">{formatMicroUsd(r.cost_micro_usd)}</td>
                </tr>
              ))}
          </Table>
        </>
      )}
    </>
  );
}

type TopItem = UsageTop["items"][number];

function TopTable({
  title,
  loaded,
  link,
}: {
  title: string;
  loaded: Awaited<ReturnType<typeof load<UsageTop>>>;
  link: (item: TopItem) => string | undefined;
}) {
  return (
    <section aria-label={title} className="min-w-0">
      <h2 className="mb-2 text-base font-semibold">{title}</h2>
      {!loaded.ok ? (
        <Banner>{loaded.error.message}</Banner>
      ) : (
        <Table label={title} head={["Name", "Requests", "Failovers", "Est. cost"]}>
          {loaded.data.items.map((item) => {
            const href = link(item);
            return (
              <tr key={item.id ?? item.label} className="tabular-nums">
                <td className="max-w-[14rem] truncate px-3 py-2" title={item.detail ? `${item.label} · ${item.detail}` : item.label}>
                  {href ? (
                    <Link href={href} className="text-indigo-700 hover:underline">
                      {item.label}
                    </Link>
                  ) : (
                    item.label
                  )}
                </td>
                <td className="px-3 py-2">{formatCount(item.requests)}</td>
                <td className="px-3 py-2">{formatCount(item.failovers)}</td>
                <td className="px-3 py-2">{formatMicroUsd(item.cost_micro_usd)}</td>
              </tr>
            );
          })}
        </Table>
      )}
    </section>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div className="rounded-lg border border-slate-200 bg-white p-3">
      <dt className="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</dt>
      <dd className="mt-1 text-xl font-semibold tabular-nums">{value}</dd>
    </div>
  );
}
