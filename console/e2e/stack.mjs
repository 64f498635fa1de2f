// The real product for the console's end-to-end test: ccp-admin-server and ccp-gateway (debug
// builds) on a fresh SQLite data dir, a fake Anthropic API, and the console itself (the production build's
// standalone server). Everything binds to 127.0.0.1.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const consoleDir = path.resolve(here, "..");
const binDir = process.env.CCP_BIN_DIR ?? path.resolve(consoleDir, "../target/debug");

export const ADMIN = { username: "ops", password: "console e2e passphrase" };

/** A port nothing listens on right now (the binaries take their address as a setting). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A fake Anthropic Messages API: every POST answers a message with usage; GET /v1/models a list. */
function fakeAnthropic() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url });
      const answer =
        req.method === "GET"
          ? { data: [{ id: "claude-sonnet-5-5", type: "model" }], has_more: false }
          : {
              id: "msg_e2e",
              type: "message",
              role: "assistant",
              model: "claude-sonnet-5-5",
              content: [{ type: "text", text: "hi" }],
              stop_reason: "end_turn",
              stop_sequence: null,
              usage: { input_tokens: 1200, output_tokens: 300 },
            };
      const data = JSON.stringify(answer);
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
      res.end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, seen, url: `http://127.0.0.1:${server.address().port}` })));
}

async function waitFor(url, proc, logFile, what) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited:\n${readFileSync(logFile, "utf8")}`);
    try {
      const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(2_000) });
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not answer at ${url}:\n${readFileSync(logFile, "utf8")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startStack() {
  const data = mkdtempSync(path.join(tmpdir(), "ccp-console-e2e-"));
  const upstream = await fakeAnthropic();
  const [adminPort, gatewayPort, consolePort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    PATH: process.env.PATH,
    CCP_DATA_DIR: data,
    CCP_LOG_FORMAT: "json",
    CCP_THREADS: "2",
  };
  const run = (bin, args, input) => {
    const out = spawnSync(path.join(binDir, bin), args, { env, input, encoding: "utf8" });
    if (out.status !== 0) throw new Error(`${bin} ${args.join(" ")}: ${out.stderr}`);
    return out.stdout;
  };
  run("ccp-admin", ["migrate"]);
  run("ccp-admin", ["admin", "create", "--username", ADMIN.username], `${ADMIN.password}\n`);

  const procs = [];
  const logs = {};
  const start = (name, cmd, args, extraEnv, cwd) => {
    logs[name] = path.join(data, `${name}.log`);
    const fd = openSync(logs[name], "w");
    const proc = spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: ["ignore", fd, fd], cwd });
    procs.push(proc);
    return proc;
  };
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const consoleUrl = `http://localhost:${consolePort}`;
  const adminProc = start("admin-server", path.join(binDir, "ccp-admin-server"), [], { CCP_ADMIN_ADDR: `127.0.0.1:${adminPort}` });
  const gatewayProc = start("gateway", path.join(binDir, "ccp-gateway"), [], {
    CCP_GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`,
    CCP_PLAN_BASE_URL: upstream.url,
    CCP_METRICS_ADDR: "off",
    CCP_METRICS_SINK: "off",
    CCP_KEY_CACHE_TTL_SECS: "1",
    CCP_KEY_NEGATIVE_CACHE_TTL_SECS: "1",
    CCP_SHUTDOWN_GRACE_SECS: "1",
  });
  const consoleProc = start(
    "console",
    process.execPath,
    [path.join(consoleDir, ".next/standalone/server.js")],
    {
      NODE_ENV: "production",
      HOSTNAME: "127.0.0.1",
      PORT: String(consolePort),
      NEXT_TELEMETRY_DISABLED: "1",
      CCP_CONSOLE_ADMIN_API_URL: adminUrl,
      CCP_CONSOLE_GATEWAY_URL: gatewayUrl,
    },
    consoleDir,
  );
  await waitFor(`${adminUrl}/admin/openapi.json`, adminProc, logs["admin-server"], "ccp-admin-server");
  await waitFor(`${gatewayUrl}/readyz`, gatewayProc, logs.gateway, "ccp-gateway");
  await waitFor(`${consoleUrl}/login`, consoleProc, logs.console, "the console");

  return {
    data,
    upstream,
    adminUrl,
    gatewayUrl,
    consoleUrl,
    logs,
    readLog: (name) => readFileSync(logs[name], "utf8"),
    /** Stops the admin server (the console must then say the API is down). */
    async stopAdmin() {
      adminProc.kill("SIGTERM");
      if (adminProc.exitCode === null) await new Promise((r) => adminProc.once("exit", r));
    },
    async stop() {
      for (const p of procs) p.kill("SIGTERM");
      await Promise.all(procs.map((p) => (p.exitCode !== null ? null : new Promise((r) => p.once("exit", r)))));
      upstream.server.close();
      if (!process.env.CCP_E2E_KEEP) rmSync(data, { recursive: true, force: true });
    },
  };
}
