// Page data that may fail: an API error becomes a value the page renders as a banner.
import { ApiError } from "./api";

export type Loaded<T> = { ok: true; data: T } | { ok: false; error: ApiError };

export async function load<T>(pending: Promise<T>): Promise<Loaded<T>> {
  try {
    return { ok: true, data: await pending };
  } catch (err) {
    // Anything else (Next's redirect signal included) is not ours to swallow.
    if (err instanceof ApiError) return { ok: false, error: err };
    throw err;
  }
}

/** A form action's answer: what to show next to the form or its fields. */
export interface FormState {
  ok?: boolean;
  error?: string;
  fieldErrors?: Record<string, string>;
  /** A value to show once (a new access key), never stored. */
  revealed?: { key: string; keyId: string; title: string };
  /** What was typed, to put back after a refused submit (never a secret). */
  values?: Record<string, string>;
  /** Bumped on each answer so a form can reset after success. */
  at?: number;
}

/** Turns an API error into a form answer, putting a 409/422 next to the field it names. */
export function formError(err: unknown, fields: string[] = []): FormState {
  if (!(err instanceof ApiError)) throw err;
  const at = Date.now();
  if (err.status === 409 || err.status === 422) {
    const lower = err.message.toLowerCase();
    const field = fields.find((f) => lower.includes(f.replace(/_/g, " ")) || lower.includes(f));
    if (field) return { fieldErrors: { [field]: err.message }, at };
  }
  return { error: err.message, at };
}
