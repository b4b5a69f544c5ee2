-- Shared by the scenario scripts: one machine-readable line when wrk finishes, read by
-- benchmarks/run.sh (and report.py):
--   RESULT requests=.. duration_us=.. p50_us=.. p99_us=.. p999_us=.. socket_errors=..
--          non2xx=.. expected_non2xx=.. samples=.. latency=measured|wrk
-- `expected` is the number of deliberate non-2xx answers (mixed.lua's 404s): they are
-- reported apart and not counted in non2xx.
--
-- Latency. wrk records one sample per request (with pipelining, per batch: from writing
-- the batch to its last answer), then, before done() runs, "corrects" the histogram for
-- coordinated omission (stats_correct in wrk 4.x): every sample n adds a copy at n - e,
-- n - 2e, ... while above e, e = duration / (requests / connections). With pipelining e
-- is below the fastest batch, the copies land below the histogram's minimum where
-- percentile() does not look, and it answers 0 for p75 and up. So this undoes the
-- correction and reports the measured percentiles. That needs wrk's -c, from the
-- WRK_CONNECTIONS environment variable (run.sh sets it); without it, or when reading the
-- histogram would take too long, wrk's own percentiles are reported (latency=wrk).

local function measured_percentiles(summary, latency, ps)
   local connections = tonumber(os.getenv("WRK_CONNECTIONS") or "")
   local distinct = #latency
   if not connections or connections < 1 or distinct == 0 then return nil end
   -- latency(i) walks the histogram from its minimum: about distinct * span steps in all.
   if distinct * (latency.max - latency.min + 1) > 4e9 then return nil end
   local values, counts = {}, {}
   for i = 1, distinct do
      values[i], counts[i] = latency(i)
   end
   local per_connection = math.floor(summary.requests / connections)
   if per_connection > 0 then
      local e = math.floor(summary.duration / per_connection)
      if e < 1 then return nil end
      -- A value v > e received one copy of every higher sample with v's residue mod e.
      local above = {}
      for i = distinct, 1, -1 do
         local v, r = values[i], values[i] % e
         local d = counts[i]
         if v > e then d = d - (above[r] or 0) end
         if d < 0 then return nil end -- not wrk's correction after all
         counts[i] = d
         above[r] = (above[r] or 0) + d
      end
   end
   local total = 0
   for i = 1, distinct do total = total + counts[i] end
   if total == 0 then return nil end
   local result = {}
   for j, p in ipairs(ps) do
      -- wrk's rank rule: the smallest value with at least round(p% * total + 0.5) samples.
      local rank = math.floor(p / 100 * total + 0.5 + 0.5)
      local seen = 0
      result[j] = values[distinct]
      for i = 1, distinct do
         seen = seen + counts[i]
         if seen >= rank then
            result[j] = values[i]
            break
         end
      end
   end
   return result, total
end

function report(summary, latency, expected)
   local e = summary.errors
   expected = expected or 0
   local ps = { 50, 99, 99.9 }
   local q, samples = measured_percentiles(summary, latency, ps)
   local source = "measured"
   if not q then
      q = { latency:percentile(50), latency:percentile(99), latency:percentile(99.9) }
      samples, source = 0, "wrk"
   end
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f socket_errors=%d non2xx=%d expected_non2xx=%d samples=%d latency=%s\n",
      summary.requests, summary.duration, q[1], q[2], q[3],
      e.connect + e.read + e.write + e.timeout,
      e.status - expected, expected, samples, source))
end
