"use client";

import { useActionState } from "react";
import { ConfirmAction } from "@/components/confirm";
import { Banner, Button, Field } from "@/components/ui";
import type { FormState } from "@/lib/load";
import type { ModelMapping } from "@/lib/schemas";
import { deleteMapping, saveMapping } from "../actions";

/** Adds a mapping, or edits one (the Anthropic name of an existing one is fixed). */
export function MappingForm({ mapping }: { mapping?: ModelMapping }) {
  const [state, action, pending] = useActionState<FormState, FormData>(saveMapping, {});
  const prefix = mapping ? `m-${mapping.id}-` : "new-";
  return (
    <form action={action} noValidate className="grid gap-3 sm:grid-cols-2 lg:grid-cols-[1fr_1.4fr_9rem_auto_auto] lg:items-start" key={state.at}>
      {mapping ? <input type="hidden" name="id" value={mapping.id} /> : null}
      <Field
        id={`${prefix}anthropic`}
        label="Anthropic model"
        name="anthropic_model"
        defaultValue={mapping?.anthropic_model ?? (state.ok ? undefined : state.values?.anthropic_model)}
        readOnly={!!mapping}
        placeholder="claude-opus-5-5"
        error={state.fieldErrors?.anthropic_model}
      />
      <Field
        id={`${prefix}bedrock`}
        label="Bedrock model id"
        name="bedrock_model_id"
        defaultValue={state.ok ? mapping?.bedrock_model_id : (state.values?.bedrock_model_id ?? mapping?.bedrock_model_id)}
        placeholder="global.anthropic.claude-opus-5-5-v1"
        error={state.fieldErrors?.bedrock_model_id}
      />
      <Field
        id={`${prefix}max`}
        label="Max output tokens"
        name="max_output_tokens"
        inputMode="numeric"
        defaultValue={state.ok ? (mapping?.max_output_tokens ?? "") : (state.values?.max_output_tokens ?? mapping?.max_output_tokens ?? "")}
        error={state.fieldErrors?.max_output_tokens}
      />
      <div className="flex items-center gap-2 lg:pt-7">
        <input id={`${prefix}enabled`} type="checkbox" name="enabled" defaultChecked={mapping?.enabled ?? true} className="h-4 w-4" />
        <label htmlFor={`${prefix}enabled`} className="text-sm">
          Enabled
        </label>
      </div>
      <div className="flex gap-2 lg:pt-6">
        <Button type="submit" disabled={pending} variant={mapping ? "secondary" : "primary"}>
          {pending ? "Saving…" : mapping ? "Save" : "Add mapping"}
        </Button>
        {mapping ? (
          <ConfirmAction
            label="Delete"
            title={`Delete the mapping for ${mapping.anthropic_model}?`}
            description="Requests for this model then fail over only if a built-in mapping knows it."
            confirmLabel="Delete mapping"
            action={deleteMapping}
            fields={{ id: mapping.id }}
          />
        ) : null}
      </div>
      {state.error ? (
        <div className="sm:col-span-2 lg:col-span-5">
          <Banner>{state.error}</Banner>
        </div>
      ) : null}
      {state.ok && mapping ? (
        <p role="status" className="text-sm text-emerald-700 sm:col-span-2 lg:col-span-5">
          Saved.
        </p>
      ) : null}
    </form>
  );
}

