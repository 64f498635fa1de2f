// The checked-in API types match the OpenAPI document the real ccp-admin-server serves.
// On a mismatch: `npm run gen:api -- <admin API>/admin/openapi.json` and commit the result.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { typesFor } from "../scripts/gen-api-types.mjs";
import { consoleDir, startStack } from "./stack.mjs";

test("src/lib/api-schema.d.ts is what the served OpenAPI document generates", async () => {
  const stack = await startStack();
  try {
    const document = await (await fetch(`${stack.adminUrl}/admin/openapi.json`)).json();
    const checkedIn = readFileSync(path.join(consoleDir, "src/lib/api-schema.d.ts"), "utf8");
    assert.equal(checkedIn, await typesFor(document), "regenerate with `npm run gen:api` and commit it");
  } finally {
    await stack.stop();
  }
});
