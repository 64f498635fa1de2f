"use server";
// Every change the console makes. Server actions are POSTs that Next accepts only from this
// origin (it compares Origin with Host), on top of the SameSite=Strict session cookie.

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { ApiError, call } from "@/lib/api";
import { formError, type FormState } from "@/lib/load";
import { issuedKey, modelMapping, rotatedKey, user } from "@/lib/schemas";
import { authed, endSession, sessionToken } from "@/lib/session";

const id = z.string().uuid();

function field(form: FormData, name: string): string {
  return String(form.get(name) ?? "").trim();
}

function done(path: string, extra: FormState = {}): FormState {
  revalidatePath(path);
  return { ok: true, at: Date.now(), ...extra };
}

export async function signOut() {
  const token = await sessionToken();
  if (token) {
    // Ends every session of this admin at the API; the cookie goes either way.
    await call("POST", "/admin/auth/logout", null, { token }).catch((err: unknown) => {
      if (!(err instanceof ApiError)) throw err;
    });
  }
  await endSession();
  redirect("/login?reason=signed-out");
}

export async function createUser(_prev: FormState, form: FormData): Promise<FormState> {
  const name = field(form, "name");
  const email = field(form, "email");
  const fieldErrors: Record<string, string> = {};
  if (!name) fieldErrors.name = "Enter a name.";
  else if (name.length > 200) fieldErrors.name = "At most 200 characters.";
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) fieldErrors.email = "Enter an email address.";
  const values = { name, email };
  if (Object.keys(fieldErrors).length) return { fieldErrors, values, at: Date.now() };
  let created;
  try {
    created = await authed("POST", "/admin/users", user, { body: { name, email } });
  } catch (err) {
    return { ...formError(err, ["email", "name"]), values };
  }
  redirect(`/users/${created.id}`);
}

export async function setUserStatus(form: FormData) {
  const userId = id.parse(form.get("user_id"));
  const status = z.enum(["active", "disabled"]).parse(form.get("status"));
  await authed("PATCH", `/admin/users/${userId}`, user, { body: { status } });
  revalidatePath(`/users/${userId}`);
}

const ROUTINGS = ["plan_first", "bedrock_only", "plan_only"] as const;

/** Routing, monthly budget (empty: none) and warning share of one user. */
export async function setUserPolicy(_prev: FormState, form: FormData): Promise<FormState> {
  const userId = id.parse(form.get("user_id"));
  const routing = field(form, "routing");
  const budget = field(form, "monthly_budget_usd").replace(/^\$/, "");
  const warning = field(form, "budget_warning_percent");
  const fieldErrors: Record<string, string> = {};
  if (!ROUTINGS.includes(routing as (typeof ROUTINGS)[number])) fieldErrors.routing = "Choose a routing.";
  if (budget && !/^(1000000(\.0{1,6})?|[0-9]{1,6}(\.[0-9]{1,6})?)$/.test(budget)) {
    fieldErrors.monthly_budget_usd = "Enter dollars, e.g. 25 or 12.50 (at most 1000000), or leave it empty for no budget.";
  }
  const percent = Number(warning);
  if (!/^\d{1,3}$/.test(warning) || percent < 1 || percent > 100) fieldErrors.budget_warning_percent = "Enter a whole percent from 1 to 100.";
  const values = { routing, monthly_budget_usd: budget, budget_warning_percent: warning };
  if (Object.keys(fieldErrors).length) return { fieldErrors, values, at: Date.now() };
  try {
    await authed("PATCH", `/admin/users/${userId}`, user, {
      body: { routing, monthly_budget_usd: budget || null, budget_warning_percent: percent },
    });
    return done(`/users/${userId}`);
  } catch (err) {
    return { ...formError(err, ["monthly_budget_usd", "budget_warning_percent", "routing"]), values };
  }
}

export async function issueKey(_prev: FormState, form: FormData): Promise<FormState> {
  const userId = id.parse(form.get("user_id"));
  const name = field(form, "name");
  const expires = field(form, "expires_at");
  const body: Record<string, string> = {};
  const values = { name, expires_at: expires };
  if (name) body.name = name;
  if (expires) {
    const at = new Date(`${expires}T23:59:59Z`);
    if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
      return { fieldErrors: { expires_at: "Choose a day in the future." }, values, at: Date.now() };
    }
    body.expires_at = at.toISOString();
  }
  try {
    const issued = await authed("POST", `/admin/users/${userId}/access-keys`, issuedKey, { body });
    return done(`/users/${userId}`, {
      revealed: { key: issued.key, keyId: issued.access_key.id, title: "New access key" },
    });
  } catch (err) {
    return { ...formError(err, ["name", "expires_at"]), values };
  }
}

export async function revokeKey(_prev: FormState, form: FormData): Promise<FormState> {
  const keyId = id.parse(form.get("key_id"));
  const userId = id.parse(form.get("user_id"));
  try {
    await authed("DELETE", `/admin/access-keys/${keyId}`, null);
    return done(`/users/${userId}`);
  } catch (err) {
    return formError(err);
  }
}

export async function rotateKey(_prev: FormState, form: FormData): Promise<FormState> {
  const keyId = id.parse(form.get("key_id"));
  const userId = id.parse(form.get("user_id"));
  const grace = Number(field(form, "grace_seconds"));
  if (!Number.isInteger(grace) || grace < 0 || grace > 30 * 86_400) {
    return { fieldErrors: { grace_seconds: "Choose a grace period." }, at: Date.now() };
  }
  try {
    const rotated = await authed("POST", `/admin/access-keys/${keyId}/rotate`, rotatedKey, {
      body: { grace_seconds: grace },
    });
    return done(`/users/${userId}`, {
      revealed: { key: rotated.key, keyId: rotated.access_key.id, title: "Replacement access key" },
    });
  } catch (err) {
    return formError(err, ["grace_seconds"]);
  }
}

export async function setBedrockKey(_prev: FormState, form: FormData): Promise<FormState> {
  const keyId = id.parse(form.get("key_id"));
  const userId = id.parse(form.get("user_id"));
  const apiKey = String(form.get("api_key") ?? "").trim();
  const region = field(form, "region");
  const fieldErrors: Record<string, string> = {};
  if (!apiKey) fieldErrors.api_key = "Paste the Bedrock API key.";
  if (!/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region)) fieldErrors.region = "Enter an AWS region, e.g. us-east-1.";
  // The Bedrock key is never sent back, even to refill the form.
  const values = { region };
  if (Object.keys(fieldErrors).length) return { fieldErrors, values, at: Date.now() };
  try {
    await authed("POST", `/admin/access-keys/${keyId}/bedrock-key`, null, { body: { api_key: apiKey, region } });
    return done(`/users/${userId}`);
  } catch (err) {
    return { ...formError(err, ["region", "api_key"]), values };
  }
}

export async function removeBedrockKey(_prev: FormState, form: FormData): Promise<FormState> {
  const keyId = id.parse(form.get("key_id"));
  const userId = id.parse(form.get("user_id"));
  try {
    await authed("DELETE", `/admin/access-keys/${keyId}/bedrock-key`, null);
    return done(`/users/${userId}`);
  } catch (err) {
    return formError(err);
  }
}

export async function saveMapping(_prev: FormState, form: FormData): Promise<FormState> {
  const mappingId = field(form, "id");
  const anthropic = field(form, "anthropic_model");
  const bedrock = field(form, "bedrock_model_id");
  const maxText = field(form, "max_output_tokens");
  const enabled = form.get("enabled") === "on";
  const fieldErrors: Record<string, string> = {};
  if (!mappingId && !anthropic) fieldErrors.anthropic_model = "Enter the model name Claude Code sends.";
  if (!bedrock) fieldErrors.bedrock_model_id = "Enter a Bedrock model or inference profile id.";
  const max = maxText ? Number(maxText) : null;
  if (max !== null && (!Number.isInteger(max) || max < 1)) fieldErrors.max_output_tokens = "A whole number above 0.";
  const values = { anthropic_model: anthropic, bedrock_model_id: bedrock, max_output_tokens: maxText, enabled: enabled ? "on" : "" };
  if (Object.keys(fieldErrors).length) return { fieldErrors, values, at: Date.now() };
  try {
    if (mappingId) {
      await authed("PATCH", `/admin/model-mappings/${id.parse(mappingId)}`, modelMapping, {
        body: { bedrock_model_id: bedrock, max_output_tokens: max, enabled },
      });
    } else {
      await authed("POST", "/admin/model-mappings", modelMapping, {
        body: { anthropic_model: anthropic, bedrock_model_id: bedrock, max_output_tokens: max, enabled },
      });
    }
    return done("/model-mappings");
  } catch (err) {
    return { ...formError(err, ["anthropic_model", "bedrock_model_id", "max_output_tokens"]), values };
  }
}

export async function deleteMapping(_prev: FormState, form: FormData): Promise<FormState> {
  const mappingId = id.parse(form.get("id"));
  try {
    await authed("DELETE", `/admin/model-mappings/${mappingId}`, null);
    return done("/model-mappings");
  } catch (err) {
    return formError(err);
  }
}
