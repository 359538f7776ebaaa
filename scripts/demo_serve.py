"""The serving part of `make demo`: starts `adrec serve` on a free loopback port, asks for ads,
sends events back, shows how the answer changes, learns from a stream of events online (`adrec
learn`, whose snapshot the server swaps in), reads the user's state and metrics, and stops
the server with SIGTERM.

Usage: demo_serve.py ADREC DATA RANKING_BUNDLE RETRIEVAL_BUNDLE STATE_DIR
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if r.headers.get_content_type() == "application/json" else text)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def show(answer, note=""):
    print("  %-10s %-10s %8s %8s %9s%s" % ("ad", "creative", "pCTR", "pCVR", "eCPM", note))
    for it in answer["items"]:
        print("  %-10s %-10s %8.4f %8.4f %9.5f" % (it["item_id"], it["creative_id"], it["pctr"], it["pcvr"], it["ecpm"]))


def main():
    adrec, data, ranking, retrieval, state = sys.argv[1:6]
    shutil.rmtree(state, ignore_errors=True)
    workdir = tempfile.mkdtemp(prefix="adrec-demo-serve")
    port_file = os.path.join(workdir, "port")
    log = open(os.path.join(workdir, "serve.log"), "w")
    # The server follows a link the online learner moves to its snapshots (--watch).
    learn = os.path.join(workdir, "learn")
    os.makedirs(learn)
    os.symlink(os.path.abspath(ranking), os.path.join(learn, "current"))
    cmd = [adrec, "serve", "--bundle", os.path.join(learn, "current"), "--retrieval", retrieval, "--data", data,
           "--state", state, "--port", "0", "--port-file", port_file, "--frequency-cap", "2", "--watch", "0.5"]
    print("$ " + " ".join(cmd))
    server = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if server.poll() is not None or time.time() > deadline:
                print(open(log.name).read())
                raise SystemExit("adrec serve did not start")
            time.sleep(0.1)
        port = int(open(port_file).read())
        print("listening on 127.0.0.1:%d; /readyz: %s" % (port, call(port, "GET", "/readyz")[1]))
        models = call(port, "GET", "/v1/models")[1]
        print("serving %s (retrieval: %s)" % (models["version"], models["retrieval"].get("index", "popular")))

        user, now = "u0000042", 1800000000
        request = {"user_id": user, "context": {"scene": "feed", "ts": now}, "k": 5}
        t0 = time.time()
        _, first = call(port, "POST", "/v1/recommend", request)
        print("\nPOST /v1/recommend %s  (%.1f ms, %d retrieved, %d ranked)" % (
            json.dumps(request), 1000 * (time.time() - t0), first["retrieved"], first["ranked"]))
        show(first)

        top, clicked = first["items"][0]["item_id"], first["items"][1]["item_id"]
        events = {"events": [
            {"event_id": "demo-1", "user_id": user, "item_id": top, "action": "impression", "ts": now - 120, "scene": "feed"},
            {"event_id": "demo-2", "user_id": user, "item_id": top, "action": "impression", "ts": now - 60, "scene": "feed"},
            {"event_id": "demo-3", "user_id": user, "item_id": clicked, "action": "impression", "ts": now - 30, "scene": "feed"},
            {"event_id": "demo-4", "user_id": user, "item_id": clicked, "action": "click", "ts": now - 28, "scene": "feed"}]}
        status, ack = call(port, "POST", "/v1/events", events)
        print("\nPOST /v1/events: %s saw %s twice, clicked %s -> %s %s" % (user, top, clicked, status, ack))
        print("the same events again -> %s" % (call(port, "POST", "/v1/events", events)[1],))
        _, second = call(port, "POST", "/v1/recommend", request)
        print("\nPOST /v1/recommend again: %s is frequency-capped (2 a day); the click moved the scores" % top)
        show(second)
        assert all(it["item_id"] != top for it in second["items"]), "the capped ad came back"

        cold = {"user_id": "a-new-user", "context": {"scene": "search", "ts": now}, "k": 3}
        _, third = call(port, "POST", "/v1/recommend", cold)
        print("\nan unknown user takes the cold-start path (known_user=%s):" % third["known_user"])
        show(third)
        _, u = call(port, "GET", "/v1/users/%s?limit=3" % user)
        print("\nGET /v1/users/%s: totals %s; newest: %s" % (user, u["stored_totals"], ", ".join(
            "%s %s (%s)" % (e["action"], e["item_id"], e["source"]) for e in u["recent"])))
        status, bad = call(port, "POST", "/v1/recommend", {"user_id": 42})
        print("a bad request -> %d %s" % (status, bad["error"]["message"]))
        # Online learning: a stream of served impressions comes back, a click after every fourth
        # on ads of one advertiser's kind; `adrec learn` trains on them and publishes a snapshot,
        # which the server swaps in by itself.
        stream, k = [], 0
        for i in range(800):
            u, ad = "u%07d" % (i * 37 % 5000), "ad%06d" % (i * 11 % 1000)
            stream.append({"event_id": "demo-s%d" % k, "user_id": u, "item_id": ad, "action": "impression",
                           "ts": now + i, "scene": "feed", "position": i % 5})
            k += 1
            if i % 4 == 0:
                stream.append({"event_id": "demo-s%d" % k, "user_id": u, "item_id": ad, "action": "click",
                               "ts": now + i + 3, "scene": "feed"})
                k += 1
        accepted = sum(call(port, "POST", "/v1/events", {"events": stream[j:j + 200]})[1]["accepted"]
                       for j in range(0, len(stream), 200))
        learn_cmd = [adrec, "learn", "--data", data, "--events", state, "--out", learn, "--once", "--json", "-q"]
        print("\n%d more events posted; $ %s" % (accepted, " ".join(learn_cmd)))
        report = json.loads(subprocess.run(learn_cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        a = report["attribution"]
        print("learned from %d log events: %d impressions, %d outcomes attributed (%d unattributed), %d samples "
              "(fake negatives and their positives), %d steps; snapshot %d" % (
                  report["events_read"], a["impressions"], a["outcomes"] - a["unattributed"], a["unattributed"],
                  report["samples"], report["steps"], report["snapshot"]))
        deadline = time.time() + 30
        version = models["version"]
        while version == models["version"] and time.time() < deadline:
            time.sleep(0.1)
            version = call(port, "GET", "/readyz")[1]["model_version"]
        print("the server swapped it in by itself (--watch): now serving %s" % version)
        _, learned = call(port, "POST", "/v1/recommend", request)
        print("POST /v1/recommend for %s from the learned model:" % user)
        show(learned)

        _, metrics = call(port, "GET", "/metrics")
        lines = [l for l in metrics.splitlines() if l.startswith(("adrec_http_requests_total", "adrec_events_stored", "adrec_rank_batches"))]
        print("\nGET /metrics (excerpt):\n  " + "\n  ".join(lines))
        # Mean time per call of each pipeline stage, from the adrec_stage_seconds histograms.
        stage = {}
        for what, name, v in re.findall(r'^adrec_stage_seconds_(sum|count)\{stage="(\w+)"\} (\S+)', metrics, re.M):
            stage.setdefault(name, {})[what] = float(v)
        means = ["%s %.2f" % (n, 1000 * d["sum"] / d["count"]) for n, d in stage.items() if d.get("count")]
        print("  stage times, mean ms per call: " + ", ".join(means))
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        print("\nSIGTERM -> adrec serve exited with %d" % code)
        shutil.rmtree(workdir, ignore_errors=True)
    if code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
