"use client";
// A user's routing and monthly Bedrock budget, with this month's spend against it.
import { useActionState } from "react";
import { Badge, Banner, Button, Field, Select } from "@/components/ui";
import type { FormState } from "@/lib/load";
import type { Budget, Routing } from "@/lib/schemas";
import { setUserPolicy } from "../../actions";

const ROUTINGS: { value: Routing; label: string }[] = [
  { value: "plan_first", label: "Plan first, Bedrock when it fails (default)" },
  { value: "bedrock_only", label: "Bedrock only (no Anthropic plan)" },
  { value: "plan_only", label: "Plan only (never Bedrock)" },
];

const STATE: Record<Budget["state"], { tone: "green" | "gray" | "red" | "amber"; text: string }> = {
  no_budget: { tone: "gray", text: "no budget" },
  within: { tone: "green", text: "within budget" },
  warning: { tone: "amber", text: "near the budget" },
  over: { tone: "red", text: "over budget: no Bedrock until the month turns" },
};

export function PolicyForm({
  userId,
  routing,
  budget,
  monthStart,
  resetsAt,
}: {
  userId: string;
  routing: Routing;
  budget: Budget;
  /** Formatted for the page's time zone by the server. */
  monthStart: string;
  resetsAt: string;
}) {
  const [state, action, pending] = useActionState<FormState, FormData>(setUserPolicy, {});
  const values = state.ok ? undefined : state.values;
  const badge = STATE[budget.state];
  const used = Math.min(budget.used_percent ?? 0, 100);
  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-col gap-2 text-sm">
        <p>
          Estimated Bedrock spend this calendar month (UTC, since {monthStart}):{" "}
          <span className="font-semibold tabular-nums">${budget.spend_usd}</span>
          {budget.monthly_budget_usd ? (
            <>
              {" "}
              of <span className="font-semibold tabular-nums">${budget.monthly_budget_usd}</span> ({budget.used_percent} %)
            </>
          ) : null}{" "}
          <Badge tone={badge.tone}>{badge.text}</Badge>
        </p>
        {budget.monthly_budget_usd ? (
          <div
            role="meter"
            aria-label="Share of the monthly Bedrock budget spent"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={used}
            className="h-2 w-full max-w-md overflow-hidden rounded bg-slate-200"
          >
            <div
              className={`h-full ${budget.state === "over" ? "bg-red-600" : budget.state === "warning" ? "bg-amber-500" : "bg-emerald-600"}`}
              style={{ width: `${used}%` }}
            />
          </div>
        ) : null}
        <p className="text-xs text-slate-500">The month&apos;s spend starts again from zero on {resetsAt}.</p>
      </div>
      <form action={action} noValidate className="grid gap-3 sm:grid-cols-[1fr_15rem_7rem_auto] sm:items-start" key={state.at}>
        <input type="hidden" name="user_id" value={userId} />
        <Select label="Routing" name="routing" options={ROUTINGS} defaultValue={values?.routing ?? routing} />
        <Field
          label="Monthly Bedrock budget, USD"
          name="monthly_budget_usd"
          inputMode="decimal"
          placeholder="none"
          defaultValue={values?.monthly_budget_usd ?? budget.monthly_budget_usd ?? ""}
          error={state.fieldErrors?.monthly_budget_usd}
          hint="Empty: no budget."
        />
        <Field
          label="Warn at, %"
          name="budget_warning_percent"
          inputMode="numeric"
          defaultValue={values?.budget_warning_percent ?? String(budget.warning_percent)}
          error={state.fieldErrors?.budget_warning_percent}
        />
        <div className="sm:pt-6">
          <Button type="submit" disabled={pending}>
            {pending ? "Saving…" : "Save policy"}
          </Button>
        </div>
        {state.error ? (
          <div className="sm:col-span-4">
            <Banner>{state.error}</Banner>
          </div>
        ) : state.ok ? (
          <div className="sm:col-span-4">
            <Banner kind="success">Saved. Gateways apply it within their key-cache time (30 s by default).</Banner>
          </div>
        ) : null}
      </form>
    </div>
  );
}
