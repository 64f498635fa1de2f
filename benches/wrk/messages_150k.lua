-- A long conversation: a 150 KB POST, answered as JSON.
-- wrk -t2 -c32 -d20s -s benches/wrk/messages_150k.lua 'http://127.0.0.1:8080/ak/<access key>/v1/messages?beta=true'
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local claude_code = require("claude_code")

claude_code.request(150, false)
done = claude_code.done
