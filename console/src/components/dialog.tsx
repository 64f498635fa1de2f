"use client";
// An accessible modal on Radix's dialog primitive: focus is trapped, Escape closes it, the
// title labels it.
import * as RadixDialog from "@radix-ui/react-dialog";
import { Button } from "./ui";

export function Dialog({
  open,
  onOpenChange,
  title,
  description,
  children,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: string;
  description?: string;
  children: React.ReactNode;
}) {
  return (
    <RadixDialog.Root open={open} onOpenChange={onOpenChange}>
      <RadixDialog.Portal>
        <RadixDialog.Overlay className="fixed inset-0 bg-slate-900/40" />
        <RadixDialog.Content className="fixed left-1/2 top-1/2 w-[min(36rem,calc(100vw-2rem))] -translate-x-1/2 -translate-y-1/2 rounded-lg bg-white p-5 shadow-xl">
          <RadixDialog.Title className="text-lg font-semibold">{title}</RadixDialog.Title>
          {description ? (
            <RadixDialog.Description className="mt-1 text-sm text-slate-600">{description}</RadixDialog.Description>
          ) : (
            <RadixDialog.Description className="sr-only">{title}</RadixDialog.Description>
          )}
          <div className="mt-4">{children}</div>
        </RadixDialog.Content>
      </RadixDialog.Portal>
    </RadixDialog.Root>
  );
}

/** A dialog form's buttons: Cancel, and the action (busy while `pending`). */
export function DialogActions({
  onCancel,
  submitLabel,
  busyLabel,
  pending,
  variant = "primary",
}: {
  onCancel: () => void;
  submitLabel: string;
  busyLabel: string;
  pending: boolean;
  variant?: "primary" | "danger";
}) {
  return (
    <div className="flex justify-end gap-2">
      <Button type="button" variant="secondary" onClick={onCancel}>
        Cancel
      </Button>
      <Button type="submit" variant={variant} disabled={pending}>
        {pending ? busyLabel : submitLabel}
      </Button>
    </div>
  );
}
