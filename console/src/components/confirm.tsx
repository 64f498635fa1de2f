"use client";
// A button that asks before it does something that cannot be undone, then submits `action`.
import { useActionState, useEffect, useState } from "react";
import type { FormState } from "@/lib/load";
import { Dialog, DialogActions } from "./dialog";
import { Banner, Button } from "./ui";

export function ConfirmAction({
  label,
  title,
  description,
  confirmLabel,
  action,
  fields,
  children,
}: {
  label: string;
  title: string;
  description: string;
  confirmLabel: string;
  action: (prev: FormState, form: FormData) => Promise<FormState>;
  fields: Record<string, string>;
  children?: React.ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const [state, formAction, pending] = useActionState<FormState, FormData>(action, {});
  useEffect(() => {
    if (state.ok) setOpen(false);
  }, [state]);
  return (
    <>
      <Button type="button" variant="secondary" onClick={() => setOpen(true)}>
        {label}
      </Button>
      {open ? (
        <Dialog open onOpenChange={setOpen} title={title} description={description}>
          <form action={formAction} className="flex flex-col gap-4">
            {Object.entries(fields).map(([k, v]) => (
              <input key={k} type="hidden" name={k} value={v} />
            ))}
            {children}
            {state.error ? <Banner>{state.error}</Banner> : null}
            <DialogActions onCancel={() => setOpen(false)} submitLabel={confirmLabel} busyLabel="Working…" pending={pending} variant="danger" />
          </form>
        </Dialog>
      ) : null}
    </>
  );
}
