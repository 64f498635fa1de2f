// "21–40 of 312" with Previous / Next links that keep the page's filters in the URL.
import { LinkButton } from "./ui";

/** The page number in a `?page=` value (1 when missing or bad). */
export function pageFrom(text: string | undefined): number {
  return Math.max(1, Number.parseInt(text ?? "1", 10) || 1);
}

/** `path` with the non-empty `filters` and, past the first, the page. */
export function pageHref(path: string, filters: Record<string, string | undefined>, page: number): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
  if (page > 1) p.set("page", String(page));
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

export function Pager({
  total,
  page,
  pageSize,
  path,
  filters,
}: {
  total: number;
  page: number;
  pageSize: number;
  path: string;
  filters: Record<string, string | undefined>;
}) {
  const first = (page - 1) * pageSize + 1;
  const last = Math.min(total, page * pageSize);
  return (
    <nav aria-label="Pages" className="flex flex-wrap items-center justify-between gap-3 text-sm">
      <span className="text-slate-600">
        {first}–{last} of {total}
      </span>
      <span className="flex gap-2">
        {page > 1 ? <LinkButton href={pageHref(path, filters, page - 1)}>Previous</LinkButton> : null}
        {last < total ? <LinkButton href={pageHref(path, filters, page + 1)}>Next</LinkButton> : null}
      </span>
    </nav>
  );
}
