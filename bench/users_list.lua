-- Scenario 5: GET /api/users as the admin.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/api/users"
wrk.headers["Authorization"] = "Bearer " .. bench.env("BENCH_TOKEN")
