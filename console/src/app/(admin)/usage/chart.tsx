"use client";
// Usage over time: requests (with failovers), tokens by kind, or estimated cost.
import { useState } from "react";
import { Area, AreaChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Segmented } from "@/components/segmented";
import { formatCount, formatMicroUsd } from "@/lib/format";
import { planOnly, type UsageRow } from "@/lib/usage";

export type View = "requests" | "tokens" | "cost";

/** The chart views, with what "tokens" means on the page at hand. */
export function chartViews(tokens: string): { value: View; label: string }[] {
  return [
    { value: "requests", label: "Requests" },
    { value: "tokens", label: tokens },
    { value: "cost", label: "Cost" },
  ];
}

type Point = UsageRow & { label: string; plan_only: number };

// Requests stack by the path they took; together they are all requests.
const series: Record<View, { key: keyof Point; name: string; color: string }[]> = {
  requests: [
    { key: "plan_only", name: "Plan (Anthropic)", color: "#4f46e5" },
    { key: "failovers", name: "Failed over to Bedrock", color: "#f59e0b" },
    { key: "bedrock_direct", name: "Bedrock direct", color: "#dc2626" },
  ],
  tokens: [
    { key: "input_tokens", name: "Input", color: "#4f46e5" },
    { key: "output_tokens", name: "Output", color: "#059669" },
    { key: "cache_read_tokens", name: "Cache read", color: "#0ea5e9" },
    { key: "cache_write_tokens", name: "Cache write", color: "#a855f7" },
  ],
  cost: [{ key: "cost_micro_usd", name: "Estimated Bedrock cost", color: "#dc2626" }],
};

export function UsageChart({ rows, labels }: { rows: UsageRow[]; labels: string[] }) {
  const [view, setView] = useState<View>("requests");
  const data: Point[] = rows.map((r, i) => ({ ...r, label: labels[i] ?? "", plan_only: planOnly(r) }));
  const format = view === "cost" ? formatMicroUsd : formatCount;
  return (
    <div>
      <Segmented label="Chart shows" value={view} onChange={setView} options={chartViews("Tokens")} />
      <div className="h-72 w-full" data-testid="usage-chart">
        <ResponsiveContainer width="100%" height="100%">
          <AreaChart data={data} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
            <XAxis dataKey="label" tick={{ fontSize: 12 }} minTickGap={24} />
            <YAxis tickFormatter={(v: number) => format(v)} tick={{ fontSize: 12 }} width={64} />
            <Tooltip formatter={(v) => format(Number(v))} />
            <Legend />
            {series[view].map((s) => (
              <Area
                key={s.key}
                type="monotone"
                dataKey={s.key}
                name={s.name}
                stroke={s.color}
                fill={s.color}
                fillOpacity={0.15}
                stackId={view === "requests" ? "path" : undefined}
                isAnimationActive={false}
              />
            ))}
          </AreaChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
