-- Shared by the scenario scripts: one machine-readable line when wrk finishes, read by
-- benchmarks/run.sh. Latencies are in µs (with pipelining, one sample per batch).
-- `expected` is the number of deliberate non-2xx answers (mixed.lua's 404s): they are
-- reported apart and not counted as errors.
function report(summary, latency, expected)
   local e = summary.errors
   expected = expected or 0
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f socket_errors=%d non2xx=%d expected_non2xx=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
      e.connect + e.read + e.write + e.timeout,
      e.status - expected, expected))
end
