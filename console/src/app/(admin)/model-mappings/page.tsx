import type { Metadata } from "next";
import { Banner, Card, Empty, PageTitle } from "@/components/ui";
import { formatInstant } from "@/lib/format";
import { load } from "@/lib/load";
import { modelMappings, unmappedModels } from "@/lib/schemas";
import { authed } from "@/lib/session";
import { displayTimeZone } from "@/lib/settings";
import { MappingForm } from "./forms";
import { UnmappedBanner } from "./unmapped";

export const metadata: Metadata = { title: "Model map" };

export default async function MappingsPage() {
  const [result, unmapped] = await Promise.all([
    load(authed("GET", "/admin/model-mappings", modelMappings)),
    load(authed("GET", "/admin/model-mappings/unmapped", unmappedModels)),
  ]);
  const tz = displayTimeZone();
  const lastSeen: Record<string, string> = {};
  for (const m of unmapped.ok ? unmapped.data : []) lastSeen[m.model] = formatInstant(m.last_seen, tz);
  return (
    <>
      <PageTitle>Model map</PageTitle>
      <p className="mb-6 max-w-3xl text-sm text-slate-600">
        Which Bedrock model serves a request when it fails over, by the model name Claude Code sends. These
        mappings take precedence over the gateway&apos;s built-in ones; a family default (<code>family:opus</code>,
        <code> family:sonnet</code>, <code>family:haiku</code>) covers the models of its family nothing else maps.
        Gateways pick up changes within their refresh period.
      </p>
      <div className="flex flex-col gap-6">
        {unmapped.ok && unmapped.data.length > 0 ? <UnmappedBanner models={unmapped.data} lastSeen={lastSeen} /> : null}
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
