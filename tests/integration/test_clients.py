"""Many clients at once, each pipelining its requests."""

import threading

import harness
from harness import Daemon, check, check_eq

N_CLIENTS = 50
N_REQUESTS = 20


def requests_for(k):
    """The 20 requests of client k, with the reply each must get."""
    out = []
    for j in range(N_REQUESTS):
        rid = "c%d-r%d" % (k, j) if j % 2 else k * 1000 + j
        base = k * 100 + j
        kind = j % 5
        if kind == 0:
            req = {"op": "map", "fn": "square", "args": list(range(base, base + 30))}
            want = {"results": [x * x for x in range(base, base + 30)]}
        elif kind == 1:
            req = {"op": "apply", "fn": "add", "args": [base, k]}
            want = {"result": base + k}
        elif kind == 2:
            args = [[i, -k] for i in range(j)]
            req = {"op": "map", "fn": "add", "star": True, "args": args, "chunksize": 3}
            want = {"results": [i - k for i in range(j)]}
        elif kind == 3:
            item = {"client": k, "req": j, "s": "x" * j}
            req = {"op": "map", "fn": "echo", "args": [item, [item], None], "chunksize": 1}
            want = {"results": [item, [item], None]}
        else:
            req = {"op": "map", "fn": "cube", "args": [base, -base]}
            want = {"results": [base ** 3, -base ** 3]}
        req["id"] = rid
        out.append((req, want))
    return out


def test_fifty_pipelined():
    with Daemon(workers=4) as d:
        barrier = threading.Barrier(N_CLIENTS + 1, timeout=60)
        errors = []
        done = []

        def client(k):
            try:
                with d.client(timeout=30) as c:
                    reqs = requests_for(k)
                    barrier.wait()
                    # Write all 20 lines at once, then read the 20 replies.
                    c.send_raw("".join(harness.json.dumps(r, separators=(",", ":")) + "\n"
                                       for r, _ in reqs))
                    replies = {}
                    for _ in reqs:
                        rep = c.recv(timeout=90)
                        key = harness.json.dumps(rep.get("id"))
                        check(key not in replies, "client %d: two replies for id %s" % (k, key))
                        replies[key] = rep
                    for req, want in reqs:
                        rep = replies.get(harness.json.dumps(req["id"]))
                        check(rep is not None, "client %d: no reply for id %r" % (k, req["id"]))
                        check_eq(rep.get("ok"), True, "client %d id %r ok (%s)" %
                                 (k, req["id"], rep))
                        for key, val in want.items():
                            check_eq(rep.get(key), val, "client %d id %r %s" %
                                     (k, req["id"], key))
                    c.expect_silence(0.05)
                done.append(k)
            except BaseException as e:
                errors.append("client %d: %r" % (k, e))
                barrier.abort()

        threads = [threading.Thread(target=client, args=(k,), daemon=True)
                   for k in range(N_CLIENTS)]
        for t in threads:
            t.start()
        # All 50 are connected at once before any of them sends.
        harness.wait_until(lambda: d.status()["connections"] == N_CLIENTS + 1 or errors, 30,
                           "%d connections at once" % N_CLIENTS)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass  # a client failed: its error is reported below
        for t in threads:
            t.join(120)
        check(not any(t.is_alive() for t in threads), "client threads still running")
        check(not errors, "%d clients failed:\n%s" % (len(errors), "\n".join(errors[:10])))
        check_eq(sorted(done), list(range(N_CLIENTS)), "clients that finished")
        st = d.wait_quiet()
        check(st["items_done"] >= N_CLIENTS * 4 * (30 + 2), "items_done %d" % st["items_done"])


harness.main(globals())
