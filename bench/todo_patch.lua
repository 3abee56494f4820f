-- Scenario 4: PATCH /api/todos/{id}, cycling through the seeded user's 20
-- todos and flipping "completed" so that every update changes the row.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
   local headers = {
      ["Authorization"] = "Bearer " .. bench.env("BENCH_TOKEN"),
      ["Content-Type"] = "application/json",
   }
   local prepared = {}
   for _, completed in ipairs({ "true", "false" }) do
      for _, id in ipairs(bench.todo_ids()) do
         table.insert(prepared, wrk.format("PATCH", "/api/todos/" .. id, headers,
            '{"completed": ' .. completed .. '}'))
      end
   end
   bench.cycle(prepared)
end
