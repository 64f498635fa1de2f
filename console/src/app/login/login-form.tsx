"use client";

import { useActionState } from "react";
import { Banner, Button, Field } from "@/components/ui";
import type { FormState } from "@/lib/load";
import { login } from "./actions";

export function LoginForm() {
  const [state, action, pending] = useActionState<FormState, FormData>(login, {});
  return (
    <form action={action} className="flex flex-col gap-4" noValidate key={state.at}>
      {state.error ? <Banner>{state.error}</Banner> : null}
      <Field
        label="Username"
        name="username"
        autoComplete="username"
        required
        defaultValue={state.values?.username}
        error={state.fieldErrors?.username}
      />
      <Field
        label="Password"
        name="password"
        type="password"
        autoComplete="current-password"
        required
        error={state.fieldErrors?.password}
      />
      <Button type="submit" disabled={pending}>
        {pending ? "Signing in…" : "Sign in"}
      </Button>
    </form>
  );
}
