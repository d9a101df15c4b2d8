#!/usr/bin/env python3
"""A tiny Prometheus exporter for the HTTP API test: an application's metric.

Serves GET /metrics on --listen (127.0.0.1:PORT) with
  app_job_failure_ratio{shift_service="SERVICE"} VALUE
where VALUE is read from the file --value on every scrape (the test writes
0 or 0.02 into it to make the application "fail"). Runs until killed or for
--duration seconds.
"""
import argparse
import http.server
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--value", required=True)
    ap.add_argument("--service", default="web")
    ap.add_argument("--duration", type=float, default=600)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/metrics":
                self.send_error(404)
                return
            try:
                v = float(open(a.value).read().strip() or 0)
            except (OSError, ValueError):
                v = 0.0
            body = ("# HELP app_job_failure_ratio Failed jobs / all jobs, last minute.\n"
                    "# TYPE app_job_failure_ratio gauge\n"
                    'app_job_failure_ratio{shift_service="%s"} %g\n' % (a.service, v)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer((host, int(port)), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    time.sleep(a.duration)
    srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
