-- Scenarios 7 and 8: POST /auth/token, the OAuth2 password grant
-- (form-encoded). The credentials must be right: failed logins are throttled
-- per account (429), and a benchmark of the throttle is not the point.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "POST"
wrk.path = "/auth/token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password"
   .. "&username=" .. bench.form_encode(bench.env("BENCH_USERNAME"))
   .. "&password=" .. bench.form_encode(bench.env("BENCH_PASSWORD"))
