// The console's only way to the admin REST API. Runs on the console's server: the browser
// never sees the API's address or the admin's session token.
import type { z } from "zod";
import { errorBody } from "./schemas";

export function apiBaseUrl(): string {
  return (process.env.CCP_CONSOLE_ADMIN_API_URL ?? "http://127.0.0.1:8081").replace(/\/+$/, "");
}

/** An answer the console could not use: the API's own error, or no answer at all. */
export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the API could not be reached. */
    readonly status: number,
    /** The API's error type (`invalid_request_error`, …), or `unreachable` / `bad_answer`. */
    readonly type: string,
    message: string,
    /** Seconds, from `retry-after` (login throttling). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

export interface CallOptions {
  token?: string;
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
}

/** Calls the admin API and checks its answer against `schema` (`null` for an empty answer). */
export async function call<T>(
  method: Method,
  path: string,
  schema: z.ZodType<T> | null,
  options: CallOptions = {},
): Promise<T> {
  const url = new URL(apiBaseUrl() + path);
  for (const [k, v] of Object.entries(options.query ?? {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      signal: AbortSignal.timeout(10_000),
    });
  } catch {
    throw new ApiError(0, "unreachable", "The admin API cannot be reached. Is ccp-admin-server running?");
  }
  const text = await res.text();
  if (!res.ok) {
    const parsed = errorBody.safeParse(safeJson(text));
    const retry = Number(res.headers.get("retry-after"));
    throw new ApiError(
      res.status,
      parsed.success ? parsed.data.error.type : "api_error",
      parsed.success ? parsed.data.error.message : `The admin API answered ${res.status}.`,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }
  if (schema === null) return undefined as T;
  const parsed = schema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new ApiError(res.status, "bad_answer", `Unexpected answer from ${method} ${path}.`);
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
