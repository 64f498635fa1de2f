import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { Badge, Banner, Button, Card, Empty, PageTitle } from "@/components/ui";
import { formatCount, formatInstant, formatMicroUsd } from "@/lib/format";
import { load } from "@/lib/load";
import { usageReport, userDetail, type UsageReport } from "@/lib/schemas";
import { fillSeries } from "@/lib/usage";
import { authed } from "@/lib/session";
import { displayTimeZone, publicGatewayUrl } from "@/lib/settings";
import { setUserStatus } from "../../actions";
import { IssueKeyForm, KeyList } from "./keys";
import { PolicyForm } from "./policy";
import { KeyUsageChart } from "./usage";

export const metadata: Metadata = { title: "User" };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export default async function UserPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  if (!UUID.test(id)) notFound();
  // One round of calls, in parallel: the user with its keys, and 30 days of its usage per key.
  const [result, usage] = await Promise.all([
    load(authed("GET", `/admin/users/${id}`, userDetail)),
    load(authed("GET", "/admin/usage", usageReport, { query: { user: id, group_by: "key", granularity: "day" } })),
  ]);
  if (!result.ok) {
    if (result.error.status === 404) notFound();
    return (
      <>
        <PageTitle>User</PageTitle>
        <Banner>{result.error.message}</Banner>
      </>
    );
  }
  const { user, budget, access_keys: keys } = result.data;
  const tz = displayTimeZone();
  const now = Date.now();
  const dates: Record<string, string> = {};
  for (const k of keys) {
    dates[`${k.id}:created`] = formatInstant(k.created_at, tz);
    dates[`${k.id}:expires`] = k.expires_at ? formatInstant(k.expires_at, tz) : "never";
    dates[`${k.id}:revoked`] = formatInstant(k.revoked_at, tz);
    dates[`${k.id}:used`] = k.last_used_at ? formatInstant(k.last_used_at, tz) : "not yet";
    if (k.expires_at && Date.parse(k.expires_at) <= now) dates[`${k.id}:expired`] = "yes";
    if (k.circuit?.open_until) dates[`${k.id}:circuit_until`] = formatInstant(k.circuit.open_until, tz);
    if (k.circuit?.last_failure_at) dates[`${k.id}:circuit_failure`] = formatInstant(k.circuit.last_failure_at, tz);
  }
  const active = user.status === "active";
  return (
    <>
      <PageTitle
        actions={
          <form action={setUserStatus}>
            <input type="hidden" name="user_id" value={user.id} />
            <input type="hidden" name="status" value={active ? "disabled" : "active"} />
            <Button type="submit" variant={active ? "danger" : "primary"}>
              {active ? "Deactivate user" : "Activate user"}
            </Button>
          </form>
        }
      >
        {user.name}
      </PageTitle>
      <div className="flex flex-col gap-6">
        <Card>
          <dl className="grid gap-3 text-sm sm:grid-cols-3">
            <div>
              <dt className="font-medium text-slate-600">Email</dt>
              <dd>{user.email}</dd>
            </div>
            <div>
              <dt className="font-medium text-slate-600">Status</dt>
              <dd>
                <Badge tone={active ? "green" : "gray"}>{user.status}</Badge>
                {!active ? <span className="ml-2 text-slate-600">its keys are refused</span> : null}
              </dd>
            </div>
            <div>
              <dt className="font-medium text-slate-600">Created ({tz})</dt>
              <dd className="tabular-nums">{formatInstant(user.created_at, tz)}</dd>
            </div>
          </dl>
        </Card>
        <Card title="Usage policy">
          <PolicyForm
            userId={user.id}
            routing={user.routing}
            budget={budget}
            monthStart={formatInstant(budget.month_start, "UTC").slice(0, 10)}
            resetsAt={`${formatInstant(budget.resets_at, "UTC").slice(0, 10)} 00:00 UTC`}
          />
        </Card>
        <Card title="Usage, last 30 days">
          {!usage.ok ? (
            <Banner>{usage.error.message}</Banner>
          ) : usage.data.totals.requests === 0 ? (
            <Empty>No requests in the last 30 days.</Empty>
          ) : (
            <UserUsage report={usage.data} keys={keys} tz={tz} />
          )}
        </Card>
        <Card title="Access keys">
          <div className="flex flex-col gap-4">
            <IssueKeyForm userId={user.id} gatewayUrl={publicGatewayUrl()} />
            {keys.length === 0 ? (
              <Empty>No access keys yet. Issue one for each machine or tool this person uses.</Empty>
            ) : (
              <KeyList keys={keys} gatewayUrl={publicGatewayUrl()} dates={dates} />
            )}
          </div>
        </Card>
      </div>
    </>
  );
}

function UserUsage({ report, keys, tz }: { report: UsageReport; keys: { id: string; name: string | null; display_prefix: string }[]; tz: string }) {
  const t = report.totals;
  const keyLabels = Object.fromEntries(keys.map((k) => [k.id, k.name ? `${k.name} (${k.display_prefix})` : k.display_prefix]));
  const bucketLabels = Object.fromEntries(
    fillSeries({ ...report, series: [] }).map((r) => [r.t, formatInstant(new Date(r.t).toISOString(), tz).slice(0, 10)]),
  );
  return (
    <div className="flex flex-col gap-4">
      <dl className="grid grid-cols-2 gap-3 text-sm sm:grid-cols-4">
        {[
          ["Requests", formatCount(t.requests)],
          ["Failovers", formatCount(t.failovers)],
          ["Tokens (in + out)", formatCount(t.input_tokens + t.output_tokens)],
          ["Est. Bedrock cost", formatMicroUsd(t.cost_micro_usd)],
        ].map(([label, value]) => (
          <div key={label}>
            <dt className="font-medium text-slate-600">{label}</dt>
            <dd className="text-lg font-semibold tabular-nums">{value}</dd>
          </div>
        ))}
      </dl>
      <KeyUsageChart report={report} keyLabels={keyLabels} bucketLabels={bucketLabels} />
    </div>
  );
}
