"use client";
// This user's usage with one line per access key: people hold a key per machine or tool
// and want to compare them.
import { useState } from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Segmented } from "@/components/segmented";
import { formatCount, formatMicroUsd } from "@/lib/format";
import type { UsageNumbers, UsageReport } from "@/lib/schemas";
import { seriesByKey } from "@/lib/usage";
import { chartViews, type View } from "../../usage/chart";


const pick: Record<View, (n: UsageNumbers) => number> = {
  requests: (n) => n.requests,
  tokens: (n) => n.input_tokens + n.output_tokens,
  cost: (n) => n.cost_micro_usd,
};

const COLORS = ["#4f46e5", "#059669", "#f59e0b", "#dc2626", "#0ea5e9", "#a855f7", "#64748b", "#db2777"];

export function KeyUsageChart({
  report,
  keyLabels,
  bucketLabels,
}: {
  report: UsageReport;
  keyLabels: Record<string, string>;
  bucketLabels: Record<number, string>;
}) {
  const [view, setView] = useState<View>("requests");
  const { rows, keys } = seriesByKey(report, pick[view]);
  const data = rows.map((r) => ({ ...r, label: bucketLabels[r.t] ?? "" }));
  const format = view === "cost" ? formatMicroUsd : formatCount;
  return (
    <div>
      <Segmented label="Chart shows" value={view} onChange={setView} options={chartViews("Tokens (in + out)")} />
      <div className="h-64 w-full" data-testid="key-usage-chart">
        <ResponsiveContainer width="100%" height="100%">
          <LineChart data={data} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#e2e8f0" />
            <XAxis dataKey="label" tick={{ fontSize: 12 }} minTickGap={24} />
            <YAxis tickFormatter={(v: number) => format(v)} tick={{ fontSize: 12 }} width={64} />
            <Tooltip formatter={(v) => format(Number(v))} />
            <Legend />
            {keys.map((k, i) => (
              <Line
                key={k}
                type="monotone"
                dataKey={k}
                name={keyLabels[k] ?? k.slice(0, 8)}
                stroke={COLORS[i % COLORS.length]}
                dot={false}
                isAnimationActive={false}
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
