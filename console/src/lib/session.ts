// The admin's session: the API's token in an httpOnly cookie that scripts cannot read,
// SameSite=Strict, Secure everywhere but localhost.
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { ApiError, call, type CallOptions, type Method } from "./api";
import type { z } from "zod";

export const TOKEN_COOKIE = "ccp_session";
export const NAME_COOKIE = "ccp_admin";

/** Whether the console is served over plain HTTP on this machine (the only place a cookie may
 * go without Secure). */
export async function isLocalHttp(): Promise<boolean> {
  const h = await headers();
  const host = (h.get("x-forwarded-host") ?? h.get("host") ?? "").replace(/:\d+$/, "");
  const proto = h.get("x-forwarded-proto") ?? "http";
  return proto === "http" && ["localhost", "127.0.0.1", "[::1]"].includes(host);
}

export async function startSession(token: string, expiresAt: number, username: string) {
  const jar = await cookies();
  const options = {
    httpOnly: true,
    secure: !(await isLocalHttp()),
    sameSite: "strict" as const,
    path: "/",
    expires: new Date(expiresAt * 1000),
  };
  jar.set(TOKEN_COOKIE, token, options);
  jar.set(NAME_COOKIE, username, options);
}

export async function endSession() {
  const jar = await cookies();
  jar.delete(TOKEN_COOKIE);
  jar.delete(NAME_COOKIE);
}

export async function sessionToken(): Promise<string | undefined> {
  return (await cookies()).get(TOKEN_COOKIE)?.value;
}

export async function adminName(): Promise<string | undefined> {
  return (await cookies()).get(NAME_COOKIE)?.value;
}

/** Sends the admin to sign in again, saying why. */
export function toLogin(reason: "expired" | "signed-out" = "expired"): never {
  redirect(`/login?reason=${reason}`);
}

/** An API call as the signed-in admin; without a session, or when the API says the session
 * is over (401), the admin is sent to /login. */
export async function authed<T>(
  method: Method,
  path: string,
  schema: z.ZodType<T> | null,
  options: Omit<CallOptions, "token"> = {},
): Promise<T> {
  const token = await sessionToken();
  if (!token) toLogin();
  try {
    return await call(method, path, schema, { ...options, token });
  } catch (err) {
    if (err instanceof ApiError && err.unauthorized) toLogin();
    throw err;
  }
}
