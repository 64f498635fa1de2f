"use server";

import { redirect } from "next/navigation";
import { ApiError, call } from "@/lib/api";
import type { FormState } from "@/lib/load";
import { loginAnswer } from "@/lib/schemas";
import { startSession } from "@/lib/session";

export async function login(_prev: FormState, form: FormData): Promise<FormState> {
  const username = String(form.get("username") ?? "").trim();
  const password = String(form.get("password") ?? "");
  const fieldErrors: Record<string, string> = {};
  if (!username) fieldErrors.username = "Enter your username.";
  if (!password) fieldErrors.password = "Enter your password.";
  const values = { username };
  if (Object.keys(fieldErrors).length) return { fieldErrors, values, at: Date.now() };
  try {
    const answer = await call("POST", "/admin/auth/login", loginAnswer, { body: { username, password } });
    await startSession(answer.token, answer.expires_at, username);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 429) {
      const wait = err.retryAfter ? ` Try again in ${Math.ceil(err.retryAfter / 60)} min.` : " Try again later.";
      return { error: `Too many failed sign-ins.${wait}`, values, at: Date.now() };
    }
    if (err.status === 401) return { error: "Wrong username or password.", values, at: Date.now() };
    return { error: err.message, values, at: Date.now() };
  }
  redirect("/users");
}
