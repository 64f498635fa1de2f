import type { Metadata } from "next";
import Link from "next/link";
import { Pager, pageFrom } from "@/components/pager";
import { Badge, Banner, Button, Card, Empty, Field, PageTitle, Select, Table } from "@/components/ui";
import { formatInstant } from "@/lib/format";
import { load } from "@/lib/load";
import { userPage } from "@/lib/schemas";
import { authed } from "@/lib/session";
import { displayTimeZone } from "@/lib/settings";
import { CreateUserForm } from "./create-user";

export const metadata: Metadata = { title: "Users" };

const PAGE = 25;

type Search = { search?: string; status?: string; page?: string };

export default async function UsersPage({ searchParams }: { searchParams: Promise<Search> }) {
  const q = await searchParams;
  const status = q.status === "active" || q.status === "disabled" ? q.status : undefined;
  const page = pageFrom(q.page);
  const result = await load(
    authed("GET", "/admin/users", userPage, {
      query: { search: q.search?.slice(0, 200), status, limit: PAGE, offset: (page - 1) * PAGE },
    }),
  );
  const tz = displayTimeZone();
  return (
    <>
      <PageTitle>Users</PageTitle>
      <div className="flex flex-col gap-6">
        <Card title="New user">
          <CreateUserForm />
        </Card>
        <form method="get" className="grid gap-3 sm:grid-cols-[1fr_12rem_auto] sm:items-end" role="search">
          <Field label="Search name or email" name="search" defaultValue={q.search ?? ""} maxLength={200} />
          <Select
            label="Status"
            name="status"
            defaultValue={status ?? ""}
            options={[
              { value: "", label: "Any" },
              { value: "active", label: "Active" },
              { value: "disabled", label: "Disabled" },
            ]}
          />
          <Button type="submit" variant="secondary">
            Filter
          </Button>
        </form>
        {!result.ok ? (
          <Banner>{result.error.message}</Banner>
        ) : result.data.items.length === 0 ? (
          <Empty>{q.search || status ? "No user matches these filters." : "No users yet. Create the first one above."}</Empty>
        ) : (
          <>
            <Table label="Users" head={["Name", "Email", "Status", `Created (${tz})`]}>
              {result.data.items.map((u) => (
                <tr key={u.id}>
                  <td className="px-3 py-2">
                    <Link href={`/users/${u.id}`} className="font-medium text-indigo-700 hover:underline">
                      {u.name}
                    </Link>
                  </td>
                  <td className="px-3 py-2">{u.email}</td>
                  <td className="px-3 py-2">
                    <Badge tone={u.status === "active" ? "green" : "gray"}>{u.status}</Badge>
                  </td>
                  <td className="px-3 py-2 tabular-nums">{formatInstant(u.created_at, tz)}</td>
                </tr>
              ))}
            </Table>
            <Pager
              total={result.data.total}
              page={page}
              pageSize={PAGE}
              path="/users"
              filters={{ search: q.search, status }}
            />
          </>
        )}
      </div>
    </>
  );
}
