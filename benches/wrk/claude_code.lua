-- Shared by the wrk scripts: a Claude Code-shaped Messages request (system blocks, tool
-- definitions, a growing conversation) and a summary printed at the end of the run.
-- The same shape as benches/load/bench.py builds, so wrk and the load benchmark agree.

local M = {}

local function text_block(text, cached)
  local block = '{"type":"text","text":"' .. text .. '"'
  if cached then
    block = block .. ',"cache_control":{"type":"ephemeral"}'
  end
  return block .. "}"
end

-- A body of at least `kb` kilobytes; `stream` asks for server-sent events.
function M.body(kb, stream)
  local tools = {}
  for i = 0, 7 do
    tools[#tools + 1] = '{"name":"Tool' .. i .. '","description":"' .. string.rep("Executes a bash command. ", 40)
      .. '","input_schema":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}}'
  end
  local head = '{"model":"claude-sonnet-5-5","max_tokens":32000,"stream":' .. tostring(stream)
    .. ',"thinking":{"type":"adaptive","display":"omitted"},"system":['
    .. text_block("x-anthropic-billing-header: cc_version=2.1.332;") .. ","
    .. text_block(string.rep("You are Claude Code. ", 300), true)
    .. '],"tools":[' .. table.concat(tools, ",") .. '],"messages":['
  local messages, size, turn = {}, #head, 0
  while size < kb * 1024 do
    local user = '{"role":"user","content":[' .. text_block("Step " .. turn .. ": " .. string.rep("please edit the file. ", 40)) .. "]}"
    local assistant = '{"role":"assistant","content":[' .. text_block(string.rep("Done. ", 80)) .. "]}"
    messages[#messages + 1] = user
    messages[#messages + 1] = assistant
    size = size + #user + #assistant + 2
    turn = turn + 1
  end
  return head .. table.concat(messages, ",") .. "]}"
end

-- Sets wrk's request: POST the body with Claude Code's headers. The client credential comes
-- from CCP_BENCH_API_KEY (the gateway passes it through to Plan; the fake upstream takes any).
function M.request(kb, stream)
  wrk.method = "POST"
  wrk.body = M.body(kb, stream)
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.headers["anthropic-beta"] = "claude-code-20250219"
  wrk.headers["x-api-key"] = os.getenv("CCP_BENCH_API_KEY") or "sk-ant-bench"
  wrk.headers["User-Agent"] = "claude-cli/2.1.332 (external, cli)"
end

-- Printed after wrk's own report: the percentiles and one JSON line for scripts.
function M.done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("requests %d in %.1f s: %.0f req/s; non-2xx %d, socket errors %d\n",
    summary.requests, seconds, summary.requests / seconds, summary.errors.status,
    errors - summary.errors.status))
  local p = {}
  for _, q in ipairs({ 50, 90, 99, 99.9 }) do
    p[#p + 1] = string.format('"p%s_ms":%.3f', tostring(q):gsub("%.", "_"), latency:percentile(q) / 1e3)
  end
  io.write(string.format('{"requests":%d,"seconds":%.3f,"rps":%.1f,"non_2xx":%d,"socket_errors":%d,%s}\n',
    summary.requests, seconds, summary.requests / seconds, summary.errors.status,
    errors - summary.errors.status, table.concat(p, ",")))
end

return M
