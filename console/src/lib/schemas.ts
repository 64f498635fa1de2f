// zod schemas for every admin API answer the console reads. The API is the source of truth
// (see api-schema.d.ts, generated from /admin/openapi.json); these check each answer at
// run time, so a mismatch is an error message, not a broken page.
import { z } from "zod";

const timestamp = z.string().min(1);
const uuid = z.string().uuid();

export const errorBody = z.object({
  error: z.object({ type: z.string(), message: z.string() }),
});

export const loginAnswer = z.object({ token: z.string().min(1), expires_at: z.number() });

export const userStatus = z.enum(["active", "disabled"]);

export const routing = z.enum(["plan_first", "bedrock_only", "plan_only"]);
export type Routing = z.infer<typeof routing>;

/** USD as the API writes it: an exact decimal string such as "25.50". */
const usd = z.string().regex(/^-?\d+\.\d{2,6}$/);

export const user = z.object({
  id: uuid,
  name: z.string(),
  email: z.string(),
  status: userStatus,
  routing,
  monthly_budget_usd: usd.nullable(),
  budget_warning_percent: z.number().int(),
  created_at: timestamp,
  updated_at: timestamp,
});
export type User = z.infer<typeof user>;

export const userPage = z.object({
  items: z.array(user),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
});
export type UserPage = z.infer<typeof userPage>;

export const bedrockKey = z.object({
  region: z.string(),
  last4: z.string(),
  wrapper: z.string(),
  updated_at: timestamp,
});

export const circuit = z.object({
  state: z.enum(["closed", "open", "half_open"]),
  open_until: timestamp.nullable(),
  probe_until: timestamp.nullable(),
  recent_failures: z.number().int(),
  last_failure_at: timestamp.nullable(),
  opened_count: z.number().int(),
});
export type Circuit = z.infer<typeof circuit>;

export const accessKey = z.object({
  id: uuid,
  user_id: uuid,
  name: z.string().nullable(),
  display_prefix: z.string(),
  status: z.enum(["active", "revoked"]),
  created_at: timestamp,
  revoked_at: timestamp.nullable(),
  expires_at: timestamp.nullable(),
  last_used_at: timestamp.nullable(),
  replaced_by: uuid.nullable(),
  bedrock_key: bedrockKey.nullable(),
  circuit: circuit.nullable(),
});
export type AccessKey = z.infer<typeof accessKey>;

export const budget = z.object({
  month_start: timestamp,
  resets_at: timestamp,
  spend_usd: usd,
  monthly_budget_usd: usd.nullable(),
  used_percent: z.number().int().nullable(),
  warning_percent: z.number().int(),
  state: z.enum(["no_budget", "within", "warning", "over"]),
});
export type Budget = z.infer<typeof budget>;

export const userDetail = z.object({ user, budget, access_keys: z.array(accessKey) });
export type UserDetail = z.infer<typeof userDetail>;

export const issuedKey = z.object({ key: z.string().min(1), access_key: accessKey });
export const rotatedKey = issuedKey.extend({ previous: accessKey });

export const modelMapping = z.object({
  id: uuid,
  anthropic_model: z.string(),
  bedrock_model_id: z.string(),
  max_output_tokens: z.number().int().nullable(),
  enabled: z.boolean(),
  created_at: timestamp,
  updated_at: timestamp,
});
export type ModelMapping = z.infer<typeof modelMapping>;
export const modelMappings = z.array(modelMapping);

export const unmappedModel = z.object({
  model: z.string(),
  requests: z.number().int(),
  missed_failovers: z.number().int(),
  last_seen: timestamp,
  family: z.string().nullable(),
  suggested_bedrock_model_id: z.string().nullable(),
});
export type UnmappedModel = z.infer<typeof unmappedModel>;
export const unmappedModels = z.array(unmappedModel);

export const auditEntry = z.object({
  id: uuid,
  at: timestamp,
  actor: z.string(),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  detail: z.unknown().nullable(),
});
export type AuditEntry = z.infer<typeof auditEntry>;
export const auditPage = z.object({
  items: z.array(auditEntry),
  total: z.number().int(),
  limit: z.number().int(),
  offset: z.number().int(),
});

export const usageNumbers = z.object({
  requests: z.number().int(),
  failovers: z.number().int(),
  bedrock_direct: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cache_read_tokens: z.number().int(),
  cache_write_tokens: z.number().int(),
  cost_micro_usd: z.number().int(),
});
export type UsageNumbers = z.infer<typeof usageNumbers>;

export const granularity = z.enum(["hour", "day", "month"]);
export type Granularity = z.infer<typeof granularity>;

export const usageReport = z.object({
  from: timestamp,
  to: timestamp,
  granularity,
  series: z.array(usageNumbers.extend({ bucket: timestamp, key_id: uuid.optional() })),
  totals: usageNumbers,
});
export type UsageReport = z.infer<typeof usageReport>;

export const topBy = z.enum(["user", "key", "model"]);
export const usageTop = z.object({
  by: topBy,
  from: timestamp,
  to: timestamp,
  items: z.array(
    usageNumbers.extend({ id: uuid.optional(), label: z.string(), detail: z.string().optional() }),
  ),
});
export type UsageTop = z.infer<typeof usageTop>;
