-- Scenarios 1 and 8 (and the floor): GET /api/todos with a bearer token; the
-- seeded user owns exactly 20 todos, so every answer holds 20. BENCH_PATH
-- replaces the path and query (the growth mode asks for ?limit=20 of a user
-- who has 100,000).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/api/todos"
wrk.headers["Authorization"] = "Bearer " .. bench.env("BENCH_TOKEN")
