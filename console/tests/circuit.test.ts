import { describe, expect, it, vi } from "vitest";
import type { AccessKey } from "@/lib/schemas";

// keys.tsx imports the server actions; the text helper needs none of them.
vi.mock("@/app/(admin)/actions", () => ({}));
const { circuitText } = await import("@/app/(admin)/users/[id]/keys");

function key(circuit: AccessKey["circuit"]): AccessKey {
  return {
    id: "k1",
    user_id: "u1",
    name: "laptop",
    display_prefix: "ccp_AbCd…wxyz",
    status: "active",
    created_at: "2026-11-28T10:00:00Z",
    revoked_at: null,
    expires_at: null,
    last_used_at: null,
    replaced_by: null,
    bedrock_key: { region: "us-east-1", last4: "ZZ99", wrapper: "local", updated_at: "2026-11-28T10:00:00Z" },
    circuit,
  };
}

const base = { open_until: null, probe_until: null, recent_failures: 0, last_failure_at: null, opened_count: 0 };
const dates = { "k1:circuit_until": "28 Nov 2026, 12:30 UTC", "k1:circuit_failure": "28 Nov 2026, 12:00 UTC" };

describe("the circuit line of an access key", () => {
  it("says where requests go in each state", () => {
    expect(circuitText(key(null), dates)).toBe("closed: Plan first");
    expect(circuitText(key({ ...base, state: "closed", recent_failures: 2, last_failure_at: "x" }), dates)).toBe(
      "closed: Plan first (2 recent Plan failures, last 28 Nov 2026, 12:00 UTC)",
    );
    expect(circuitText(key({ ...base, state: "open", open_until: "x", opened_count: 1 }), dates)).toBe(
      "open: straight to Bedrock until 28 Nov 2026, 12:30 UTC (Plan kept failing; opened 1×)",
    );
    expect(circuitText(key({ ...base, state: "half_open" }), dates)).toMatch(/^half-open/);
  });
});
