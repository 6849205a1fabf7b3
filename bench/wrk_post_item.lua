-- POST /api/v1/items with a small JSON body, then the same JSON summary as wrk_report.lua.
wrk.method = "POST"
wrk.body = '{"name": "bench item"}'
wrk.headers["Content-Type"] = "application/json"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "wrk_report.lua")
