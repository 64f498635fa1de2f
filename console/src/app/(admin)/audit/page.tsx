import type { Metadata } from "next";
import { Pager, pageFrom } from "@/components/pager";
import { Banner, Button, Empty, Field, PageTitle, Table } from "@/components/ui";
import { formatInstant } from "@/lib/format";
import { load } from "@/lib/load";
import { auditPage } from "@/lib/schemas";
import { authed } from "@/lib/session";
import { displayTimeZone } from "@/lib/settings";

export const metadata: Metadata = { title: "Audit" };

const PAGE = 50;

type Search = { actor?: string; action?: string; target_id?: string; page?: string };

export default async function AuditPage({ searchParams }: { searchParams: Promise<Search> }) {
  const q = await searchParams;
  const page = pageFrom(q.page);
  const result = await load(
    authed("GET", "/admin/audit", auditPage, {
      query: {
        actor: q.actor?.slice(0, 200),
        action: q.action?.slice(0, 200),
        target_id: q.target_id?.slice(0, 200),
        limit: PAGE,
        offset: (page - 1) * PAGE,
      },
    }),
  );
  const tz = displayTimeZone();
  return (
    <>
      <PageTitle>Audit</PageTitle>
      <div className="flex flex-col gap-6">
        <form method="get" className="grid gap-3 sm:grid-cols-4 sm:items-end" aria-label="Audit filters">
          {(
            [
              ["actor", "Actor (admin:<id>, cli, bootstrap)"],
              ["action", "Action (e.g. access_key.revoke)"],
              ["target_id", "Target id"],
            ] as const
          ).map(([name, label]) => (
            <Field key={name} id={`a-${name}`} label={label} name={name} defaultValue={q[name] ?? ""} maxLength={200} />
          ))}
          <Button type="submit" variant="secondary">
            Filter
          </Button>
        </form>
        {!result.ok ? (
          <Banner>{result.error.message}</Banner>
        ) : result.data.items.length === 0 ? (
          <Empty>No audit entries match.</Empty>
        ) : (
          <>
            <Table label="Audit entries" head={[`When (${tz})`, "Actor", "Action", "Target", "Detail"]}>
              {result.data.items.map((e) => (
                <tr key={e.id} className="align-top">
                  <td className="whitespace-nowrap px-3 py-2 tabular-nums">{formatInstant(e.at, tz)}</td>
                  <td className="px-3 py-2 font-mono text-xs">{e.actor}</td>
                  <td className="px-3 py-2">{e.action}</td>
                  <td className="px-3 py-2 font-mono text-xs">
                    {e.target_type ? `${e.target_type} ` : ""}
                    {e.target_id ?? ""}
                  </td>
                  <td className="max-w-md px-3 py-2 font-mono text-xs break-all">
                    {e.detail ? JSON.stringify(e.detail) : ""}
                  </td>
                </tr>
              ))}
            </Table>
            <Pager
              total={result.data.total}
              page={page}
              pageSize={PAGE}
              path="/audit"
              filters={{ actor: q.actor, action: q.action, target_id: q.target_id }}
            />
          </>
        )}
      </div>
    </>
  );
}
