-- Scenario 3: POST /api/todos. Run as a second user so that the reading
-- user's list stays at exactly 20 todos for the scenarios after it.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.path = "/api/todos"
wrk.headers["Authorization"] = "Bearer " .. bench.env("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "Benchmark post", "description": "Written by bench/run.sh"}'
