import { describe, expect, it } from "vitest";
import { pageFrom, pageHref } from "@/components/pager";

describe("pages in the URL", () => {
  it("reads ?page= leniently", () => {
    expect(pageFrom(undefined)).toBe(1);
    expect(pageFrom("3")).toBe(3);
    expect(pageFrom("0")).toBe(1);
    expect(pageFrom("-2")).toBe(1);
    expect(pageFrom("abc")).toBe(1);
  });

  it("keeps the filters that are set, and the page past the first", () => {
    expect(pageHref("/users", { search: "ada lovelace", status: undefined }, 1)).toBe("/users?search=ada+lovelace");
    expect(pageHref("/audit", { actor: "cli", action: "" }, 2)).toBe("/audit?actor=cli&page=2");
    expect(pageHref("/users", {}, 1)).toBe("/users");
  });
});
