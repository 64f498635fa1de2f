"use client";

import { useActionState } from "react";
import { Banner, Button } from "@/components/ui";
import type { FormState } from "@/lib/load";
import type { UnmappedModel } from "@/lib/schemas";
import { saveMapping } from "../actions";

/** One click maps `anthropicModel` (a model, or `family:<family>`) to `bedrockModelId`. */
function QuickMap({ anthropicModel, bedrockModelId, label }: { anthropicModel: string; bedrockModelId: string; label: string }) {
  const [state, action, pending] = useActionState<FormState, FormData>(saveMapping, {});
  return (
    <form action={action} className="inline-flex flex-col gap-1">
      <input type="hidden" name="anthropic_model" value={anthropicModel} />
      <input type="hidden" name="bedrock_model_id" value={bedrockModelId} />
      <input type="hidden" name="enabled" value="on" />
      <Button type="submit" variant="secondary" disabled={pending}>
        {pending ? "Mapping…" : label}
      </Button>
      {state.error || state.fieldErrors ? (
        <span role="alert" className="text-xs text-red-800">
          {state.error ?? Object.values(state.fieldErrors ?? {}).join(" ")}
        </span>
      ) : null}
    </form>
  );
}

/** The models clients used in the last 7 days that cannot fail over, with one-click fixes. */
export function UnmappedBanner({ models, lastSeen }: { models: UnmappedModel[]; lastSeen: Record<string, string> }) {
  const missed = models.reduce((sum, m) => sum + m.missed_failovers, 0);
  return (
    <Banner>
      <p className="font-medium">
        {models.length === 1 ? "1 model" : `${models.length} models`} Claude Code used in the last 7 days cannot fail
        over to Bedrock: no mapping names a Bedrock model for {models.length === 1 ? "it" : "them"}
        {missed > 0 ? ` (${missed} failover${missed === 1 ? "" : "s"} missed)` : ""}.
      </p>
      <ul className="mt-3 flex flex-col gap-3">
        {models.map((m) => (
          <li key={m.model} className="flex flex-wrap items-center gap-x-4 gap-y-2">
            <span className="min-w-48">
              <code className="font-mono">{m.model}</code>
              <span className="block text-xs">
                {m.requests} requests, {m.missed_failovers} missed failovers, last {lastSeen[m.model]}
              </span>
            </span>
            {m.suggested_bedrock_model_id ? (
              <QuickMap
                anthropicModel={m.model}
                bedrockModelId={m.suggested_bedrock_model_id}
                label={`Map it to ${m.suggested_bedrock_model_id}`}
              />
            ) : null}
            {m.family && m.suggested_bedrock_model_id ? (
              <QuickMap
                anthropicModel={`family:${m.family}`}
                bedrockModelId={m.suggested_bedrock_model_id}
                label={`Use it as the ${m.family} default`}
              />
            ) : null}
          </li>
        ))}
      </ul>
      <p className="mt-3 text-xs">
        Or add a mapping below with another Bedrock model. A family default (<code>family:opus</code>,{" "}
        <code>family:sonnet</code>, <code>family:haiku</code>) covers every model of that family nothing else maps.
      </p>
    </Banner>
  );
}
