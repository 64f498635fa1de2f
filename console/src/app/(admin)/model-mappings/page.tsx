import type { Metadata } from "next";
import { Banner, Card, Empty, PageTitle } from "@/components/ui";
import { load } from "@/lib/load";
import { modelMappings } from "@/lib/schemas";
import { authed } from "@/lib/session";
import { MappingForm } from "./forms";

export const metadata: Metadata = { title: "Model map" };

export default async function MappingsPage() {
  const result = await load(authed("GET", "/admin/model-mappings", modelMappings));
  return (
    <>
      <PageTitle>Model map</PageTitle>
      <p className="mb-6 max-w-3xl text-sm text-slate-600">
        Which Bedrock model serves a request when it fails over, by the model name Claude Code sends. These
        mappings take precedence over the gateway&apos;s built-in ones; gateways pick up changes within their
        refresh period.
      </p>
      <div className="flex flex-col gap-6">
        <Card title="Add a mapping">
          <MappingForm />
        </Card>
        {!result.ok ? (
          <Banner>{result.error.message}</Banner>
        ) : result.data.length === 0 ? (
          <Empty>No mappings of your own yet: the built-in ones apply.</Empty>
        ) : (
          <Card title="Mappings">
            <ul className="flex flex-col divide-y divide-slate-100">
              {result.data.map((m) => (
                <li key={`${m.id}-${m.updated_at}`} className="py-3">
                  <MappingForm mapping={m} />
                </li>
              ))}
            </ul>
          </Card>
        )}
      </div>
    </>
  );
}
