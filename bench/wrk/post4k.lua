-- 4 KiB POST for `wrk -s bench/wrk/post4k.lua http://HOST:PORT/post`.
-- The body is built once; wrk sends it with a Content-Length header.
wrk.method = "POST"
wrk.body = string.rep("x", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
