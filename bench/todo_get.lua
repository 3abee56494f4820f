-- Scenario 2: GET /api/todos/{id}, cycling through the seeded user's 20 todos.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
   local headers = { ["Authorization"] = "Bearer " .. bench.env("BENCH_TOKEN") }
   local prepared = {}
   for _, id in ipairs(bench.todo_ids()) do
      table.insert(prepared, wrk.format("GET", "/api/todos/" .. id, headers))
   end
   bench.cycle(prepared)
end
