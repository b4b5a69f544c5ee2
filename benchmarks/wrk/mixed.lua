-- A mix, one request at a time per connection, in turn: GET /users/<n> (a route with a
-- :param, n = 1..100), GET /nope (a 404), and a POST /echo with a 1 KiB body.
-- The 404s are deliberate: counted apart and not reported as errors.
local threads = {}

setup = function(thread)
   table.insert(threads, thread)
end

init = function(args)
   local body = string.rep("x", 1024)
   local echo = wrk.format("POST", "/echo", { ["Content-Type"] = "text/plain" }, body)
   local nope = wrk.format("GET", "/nope")
   reqs = {}
   for i = 1, 100 do
      table.insert(reqs, wrk.format("GET", "/users/" .. i))
      table.insert(reqs, nope)
      table.insert(reqs, echo)
   end
   n = 0
   not_found = 0
end

request = function()
   n = n + 1
   return reqs[(n - 1) % #reqs + 1]
end

response = function(status, headers, body)
   if status == 404 then
      not_found = not_found + 1
   end
end

done = function(summary, latency, requests)
   local expected = 0
   for _, thread in ipairs(threads) do
      expected = expected + thread:get("not_found")
   end
   dofile("benchmarks/wrk/report.lua")
   report(summary, latency, expected)
end
