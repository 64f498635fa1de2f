"use client";

import { useActionState } from "react";
import { Banner, Button, Field } from "@/components/ui";
import type { FormState } from "@/lib/load";
import { createUser } from "../actions";

export function CreateUserForm() {
  const [state, action, pending] = useActionState<FormState, FormData>(createUser, {});
  return (
    <form action={action} noValidate className="grid gap-3 sm:grid-cols-[1fr_1fr_auto] sm:items-start" key={state.at}>
      <Field label="Name" name="name" required maxLength={200} defaultValue={state.values?.name} error={state.fieldErrors?.name} />
      <Field
        label="Email"
        name="email"
        type="email"
        required
        defaultValue={state.values?.email}
        error={state.fieldErrors?.email}
      />
      <div className="sm:pt-6">
        <Button type="submit" disabled={pending}>
          {pending ? "Creating…" : "Create user"}
        </Button>
      </div>
      {state.error ? (
        <div className="sm:col-span-3">
          <Banner>{state.error}</Banner>
        </div>
      ) : null}
    </form>
  );
}
