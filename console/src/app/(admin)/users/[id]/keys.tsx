"use client";
// The access keys of one user, and everything an admin does with them.
import { useActionState, useEffect, useState } from "react";
import { ConfirmAction } from "@/components/confirm";
import { Dialog, DialogActions } from "@/components/dialog";
import { KeyReveal } from "@/components/key-reveal";
import { Badge, Banner, Button, Field, Select } from "@/components/ui";
import type { FormState } from "@/lib/load";
import type { AccessKey } from "@/lib/schemas";
import { issueKey, removeBedrockKey, revokeKey, rotateKey, setBedrockKey } from "../../actions";

const GRACE = [
  { value: "0", label: "None: the old key stops now" },
  { value: "3600", label: "1 hour" },
  { value: "86400", label: "1 day" },
  { value: "604800", label: "7 days" },
  { value: "2592000", label: "30 days" },
];

/** Shows a revealed key from an action's answer once per answer. */
function useRevealed(state: FormState) {
  const [shown, setShown] = useState<FormState["revealed"]>();
  useEffect(() => setShown(state.revealed), [state]);
  return [shown, () => setShown(undefined)] as const;
}

export function IssueKeyForm({ userId, gatewayUrl }: { userId: string; gatewayUrl: string }) {
  const [state, action, pending] = useActionState<FormState, FormData>(issueKey, {});
  const [revealed, close] = useRevealed(state);
  return (
    <>
      <form action={action} noValidate className="grid gap-3 sm:grid-cols-[1fr_12rem_auto] sm:items-start" key={state.at}>
        <input type="hidden" name="user_id" value={userId} />
        <Field
          label="Key name (optional)"
          name="name"
          maxLength={100}
          placeholder="laptop"
          defaultValue={state.ok ? undefined : state.values?.name}
          error={state.fieldErrors?.name}
        />
        <Field
          label="Expires (optional)"
          name="expires_at"
          type="date"
          defaultValue={state.ok ? undefined : state.values?.expires_at}
          error={state.fieldErrors?.expires_at}
        />
        <div className="sm:pt-6">
          <Button type="submit" disabled={pending}>
            {pending ? "Issuing…" : "Issue key"}
          </Button>
        </div>
        {state.error ? (
          <div className="sm:col-span-3">
            <Banner>{state.error}</Banner>
          </div>
        ) : null}
      </form>
      {revealed ? <KeyReveal title={revealed.title} accessKey={revealed.key} gatewayUrl={gatewayUrl} onClose={close} /> : null}
    </>
  );
}

function RotateKey({ k, gatewayUrl }: { k: AccessKey; gatewayUrl: string }) {
  const [state, action, pending] = useActionState<FormState, FormData>(rotateKey, {});
  const [open, setOpen] = useState(false);
  const [revealed, close] = useRevealed(state);
  useEffect(() => {
    if (state.ok) setOpen(false);
  }, [state]);
  return (
    <>
      <Button type="button" variant="secondary" onClick={() => setOpen(true)}>
        Rotate
      </Button>
      {open ? (
        <Dialog
          open
          onOpenChange={setOpen}
          title={`Rotate ${k.name ?? k.display_prefix}`}
          description="Issues a replacement key. The old key keeps working for the grace period, then stops."
        >
          <form action={action} className="flex flex-col gap-4">
            <input type="hidden" name="key_id" value={k.id} />
            <input type="hidden" name="user_id" value={k.user_id} />
            <Select label="Grace period" name="grace_seconds" defaultValue="86400" options={GRACE} />
            {state.error || state.fieldErrors?.grace_seconds ? (
              <Banner>{state.error ?? state.fieldErrors?.grace_seconds}</Banner>
            ) : null}
            <DialogActions onCancel={() => setOpen(false)} submitLabel="Rotate key" busyLabel="Rotating…" pending={pending} />
          </form>
        </Dialog>
      ) : null}
      {revealed ? <KeyReveal title={revealed.title} accessKey={revealed.key} gatewayUrl={gatewayUrl} onClose={close} /> : null}
    </>
  );
}

function BedrockKey({ k }: { k: AccessKey }) {
  const [state, action, pending] = useActionState<FormState, FormData>(setBedrockKey, {});
  const [open, setOpen] = useState(false);
  useEffect(() => {
    if (state.ok) setOpen(false);
  }, [state]);
  const label = k.bedrock_key ? "Replace Bedrock key" : "Add Bedrock key";
  return (
    <>
      <Button type="button" variant="secondary" onClick={() => setOpen(true)}>
        {label}
      </Button>
      {open ? (
        <Dialog
          open
          onOpenChange={setOpen}
          title={label}
          description="This person's Amazon Bedrock API key, used when Anthropic is rate-limited or down. It is stored encrypted and never shown again; only its last 4 characters are."
        >
          <form action={action} noValidate className="flex flex-col gap-4" key={state.at}>
            <input type="hidden" name="key_id" value={k.id} />
            <input type="hidden" name="user_id" value={k.user_id} />
            <Field
              label="Bedrock API key"
              name="api_key"
              type="password"
              autoComplete="off"
              required
              error={state.fieldErrors?.api_key}
            />
            <Field
              label="Region"
              name="region"
              defaultValue={state.values?.region ?? k.bedrock_key?.region ?? "us-east-1"}
              required
              error={state.fieldErrors?.region}
            />
            {state.error ? <Banner>{state.error}</Banner> : null}
            <DialogActions onCancel={() => setOpen(false)} submitLabel="Save" busyLabel="Saving…" pending={pending} />
          </form>
        </Dialog>
      ) : null}
    </>
  );
}

/** The key's circuit breaker in words: where its requests go now, and why. */
export function circuitText(k: AccessKey, dates: Record<string, string>): string {
  const c = k.circuit;
  if (!c || c.state === "closed") {
    const failures = c?.recent_failures ?? 0;
    return failures > 0
      ? `closed: Plan first (${failures} recent Plan ${failures === 1 ? "failure" : "failures"}, last ${dates[`${k.id}:circuit_failure`]})`
      : "closed: Plan first";
  }
  if (c.state === "open") {
    return `open: straight to Bedrock until ${dates[`${k.id}:circuit_until`]} (Plan kept failing; opened ${c.opened_count}×)`;
  }
  return "half-open: the next request tries Plan again; the others go to Bedrock";
}

export function KeyList({ keys, gatewayUrl, dates }: { keys: AccessKey[]; gatewayUrl: string; dates: Record<string, string> }) {
  return (
    <ul className="flex flex-col gap-3" aria-label="Access keys">
      {keys.map((k) => {
        const active = k.status === "active";
        const expired = dates[`${k.id}:expired`] === "yes";
        return (
          <li key={k.id} className="rounded-md border border-slate-200 p-3" data-testid="access-key">
            <div className="flex flex-wrap items-center justify-between gap-2">
              <div className="flex flex-wrap items-center gap-2">
                <code className="font-mono text-sm">{k.display_prefix}</code>
                {k.name ? <span className="text-sm text-slate-700">{k.name}</span> : null}
                <Badge tone={!active ? "red" : expired ? "amber" : "green"}>{!active ? "revoked" : expired ? "expired" : "active"}</Badge>
              </div>
              {active ? (
                <div className="flex flex-wrap gap-2">
                  <RotateKey k={k} gatewayUrl={gatewayUrl} />
                  <BedrockKey k={k} />
                  {k.bedrock_key ? (
                    <ConfirmAction
                      label="Remove Bedrock key"
                      title="Remove the Bedrock key?"
                      description="This key then stops failing over to Bedrock."
                      confirmLabel="Remove"
                      action={removeBedrockKey}
                      fields={{ key_id: k.id, user_id: k.user_id }}
                    />
                  ) : null}
                  <ConfirmAction
                    label="Revoke"
                    title={`Revoke ${k.name ?? k.display_prefix}?`}
                    description="The gateway refuses it from then on. This cannot be undone."
                    confirmLabel="Revoke key"
                    action={revokeKey}
                    fields={{ key_id: k.id, user_id: k.user_id }}
                  />
                </div>
              ) : null}
            </div>
            <dl className="mt-2 grid grid-cols-2 gap-x-4 gap-y-1 text-xs text-slate-600 sm:grid-cols-4">
              <div>
                <dt className="font-medium">Created</dt>
                <dd className="tabular-nums">{dates[`${k.id}:created`]}</dd>
              </div>
              <div>
                <dt className="font-medium">{active ? "Expires" : "Revoked"}</dt>
                <dd className="tabular-nums">{active ? dates[`${k.id}:expires`] : dates[`${k.id}:revoked`]}</dd>
              </div>
              <div>
                <dt className="font-medium">Last used</dt>
                <dd className="tabular-nums">{dates[`${k.id}:used`]}</dd>
              </div>
              <div>
                <dt className="font-medium">Bedrock failover</dt>
                <dd>{k.bedrock_key ? `${k.bedrock_key.region}, key …${k.bedrock_key.last4}` : "none"}</dd>
              </div>
              {k.bedrock_key ? (
                <div className="col-span-2 sm:col-span-4">
                  <dt className="font-medium">Circuit</dt>
                  <dd data-testid="circuit">{circuitText(k, dates)}</dd>
                </div>
              ) : null}
            </dl>
          </li>
        );
      })}
    </ul>
  );
}
