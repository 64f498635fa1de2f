// After `next build`: the standalone server serves static files from beside itself, so copy
// them there (Next leaves this step to the deployer).
import { cpSync, existsSync } from "node:fs";

cpSync(".next/static", ".next/standalone/.next/static", { recursive: true });
if (existsSync("public")) cpSync("public", ".next/standalone/public", { recursive: true });
