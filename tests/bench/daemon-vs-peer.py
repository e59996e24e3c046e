#!/usr/bin/env python3
"""Helpers of tests/bench/daemon-vs-peer.sh (standard library only).

  daemon-vs-peer.py proxy PORT UPSTREAM
      A counting reverse proxy on 127.0.0.1:PORT in front of Gitea. Every runner in the
      benchmark is registered against it, so requests are counted the same way for both:
      per `x-runner-uuid` header (the runner's identity on every call after registering) and
      per path. GET /__bench/counts answers the counts as JSON. Bodies are read whole and sent
      on with Content-Length (the runners use Connect unary calls over HTTP/1.1).

  daemon-vs-peer.py setup TICKS LABEL...
      Pushes, for each label, the two workflow_dispatch workflows the measurements dispatch:
      bench-LABEL.yml (one job, one `echo` step) and ticks-LABEL.yml (a step printing
      TICKS timestamped lines, one every 0.1 s).

  daemon-vs-peer.py measure LABEL RUNS TICKS
      Dispatches bench-LABEL.yml RUNS times, one after the other, timing each from the dispatch
      call to the run being `completed` in Gitea's API; then dispatches ticks-LABEL.yml once and
      polls the job's log through the API every 20 ms, noting when each `tick` line first
      appears against the time the step wrote into it. Prints one JSON object.

Environment: GITEA_URL, GITEA_ADMIN_TOKEN, GITEA_REPO (from start.sh's env file).
"""

import base64
import http.client
import http.server
import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def api(method, path, body=None):
    url = os.environ["GITEA_URL"] + "/api/v1" + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", "token " + os.environ["GITEA_ADMIN_TOKEN"])
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text.strip() and text.lstrip()[0] in "[{" else text


def repo():
    return os.environ["GITEA_REPO"]


# --- proxy -------------------------------------------------------------------------------------

COUNTS = {"by_runner": {}, "by_path": {}, "total": 0}
LOCK = threading.Lock()


def proxy(port, upstream):
    target = urllib.parse.urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        upstream_conn = None

        def log_message(self, *args):
            pass

        def forward(self):
            if self.path == "/__bench/counts":
                with LOCK:
                    body = json.dumps(COUNTS).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            who = self.headers.get("x-runner-uuid") or "(none)"
            with LOCK:
                COUNTS["total"] += 1
                COUNTS["by_runner"][who] = COUNTS["by_runner"].get(who, 0) + 1
                key = who + " " + self.path.split("?")[0]
                COUNTS["by_path"][key] = COUNTS["by_path"].get(key, 0) + 1
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "connection", "keep-alive", "transfer-encoding")
            }
            for attempt in range(2):
                if self.upstream_conn is None:
                    self.upstream_conn = http.client.HTTPConnection(
                        target.hostname, target.port, timeout=120
                    )
                try:
                    self.upstream_conn.request(self.command, self.path, body=body, headers=headers)
                    response = self.upstream_conn.getresponse()
                    payload = response.read()
                    break
                except (http.client.HTTPException, OSError):
                    self.upstream_conn.close()
                    self.upstream_conn = None
                    if attempt == 1:
                        self.send_error(502)
                        return
            try:
                self.send_response(response.status, response.reason)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                # The runner gave up on a long poll (shutdown, or its own timeout): nothing to say.
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


# --- workflows ---------------------------------------------------------------------------------


def push_file(path, text):
    body = {
        "content": base64.b64encode(text.encode()).decode(),
        "message": "bench: " + path,
        "branch": "main",
    }
    api("POST", f"/repos/{repo()}/contents/{path}", body)


def setup(ticks, labels):
    for label in labels:
        push_file(
            f".gitea/workflows/bench-{label}.yml",
            f"name: bench-{label}\non: workflow_dispatch\njobs:\n  echo:\n    runs-on: {label}\n"
            "    steps:\n      - run: echo hello\n",
        )
        push_file(
            f".gitea/workflows/ticks-{label}.yml",
            f"name: ticks-{label}\non: workflow_dispatch\njobs:\n  ticks:\n    runs-on: {label}\n"
            "    steps:\n      - run: |\n"
            f"          for i in $(seq 1 {ticks}); do echo \"tick $i $(date +%s%N)\"; sleep 0.1; done\n",
        )


def runs_of(workflow):
    listed = api("GET", f"/repos/{repo()}/actions/runs?limit=20")
    return [r for r in listed.get("workflow_runs") or [] if r["path"].startswith(workflow + "@")]


def dispatch(workflow):
    """Dispatches `workflow` and returns (its new run, the time the dispatch call started)."""
    before = {r["id"] for r in runs_of(workflow)}
    started = time.monotonic()
    api("POST", f"/repos/{repo()}/actions/workflows/{workflow}/dispatches", {"ref": "main"})
    for _ in range(2000):
        new = [r for r in runs_of(workflow) if r["id"] not in before]
        if new:
            return new[0], started
        time.sleep(0.02)
    raise SystemExit(f"no run of {workflow} appeared")


def wait_completed(run_id, limit=300):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        run = api("GET", f"/repos/{repo()}/actions/runs/{run_id}")
        if run["status"] == "completed":
            return run
        time.sleep(0.05)
    raise SystemExit(f"run {run_id} did not complete within {limit}s")


def quantile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * q))]


def measure(label, runs, ticks):
    durations = []
    failures = 0
    for _ in range(runs):
        run, started = dispatch(f"bench-{label}.yml")
        done = wait_completed(run["id"])
        durations.append(time.monotonic() - started)
        failures += done.get("conclusion") != "success"

    run, _ = dispatch(f"ticks-{label}.yml")
    job_id = None
    seen = {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if job_id is None:
            jobs = api("GET", f"/repos/{repo()}/actions/runs/{run['id']}/jobs").get("jobs") or []
            job_id = jobs[0]["id"] if jobs else None
        if job_id is not None:
            try:
                text = api("GET", f"/repos/{repo()}/actions/jobs/{job_id}/logs")
            except urllib.error.HTTPError:
                text = ""
            now = time.time_ns()
            for line in str(text).splitlines():
                parts = line.split(" ")
                if len(parts) >= 4 and parts[1] == "tick" and parts[2] not in seen:
                    try:
                        seen[parts[2]] = (now - int(parts[3])) / 1e6
                    except ValueError:
                        pass
            if len(seen) >= ticks:
                break
        time.sleep(0.02)
    wait_completed(run["id"])
    latencies = list(seen.values())
    print(
        json.dumps(
            {
                "label": label,
                "push_to_finished_s": durations,
                "push_to_finished_median_s": statistics.median(durations) if durations else None,
                "failed_runs": failures,
                "log_lines_seen": len(latencies),
                "log_p50_ms": quantile(latencies, 0.5),
                "log_p95_ms": quantile(latencies, 0.95),
                "log_max_ms": max(latencies) if latencies else None,
            }
        )
    )


def main(argv):
    if len(argv) >= 3 and argv[0] == "proxy":
        proxy(int(argv[1]), argv[2])
    elif len(argv) >= 3 and argv[0] == "setup":
        setup(int(argv[1]), argv[2:])
    elif len(argv) == 4 and argv[0] == "measure":
        measure(argv[1], int(argv[2]), int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
