-- Scenario 6: GET /api/todos without a token; every answer must be a 401.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/api/todos"
