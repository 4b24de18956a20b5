"""bench/run's pieces: scenarios (what is measured), system (pinning, limits,
/proc readings), servers (backend and contenders), loadgen (wrk / h2load),
measure (one measurement each) and report (tables, chart, summary)."""
