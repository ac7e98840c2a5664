"""The reference examples (multiprocessing.Pool docs and the contract) with exact results."""

import re

import harness
from harness import Daemon, check, check_eq, check_error, check_results


def test_square():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "square", "args": [2, 3, 4, 5, 6, 7, 8]})
        check_results(r, [4, 9, 16, 25, 36, 49, 64], "square map")
        r = c.call({"op": "map", "fn": "cube", "args": [-3, 0, 11]})
        check_results(r, [-27, 0, 1331], "cube map")
        r = c.call({"op": "map", "fn": "square", "args": []})
        check_results(r, [], "empty map")


def test_pool5():
    with Daemon(workers=5) as d, d.client() as c:
        st = d.status()
        check_eq(st["workers"], 5, "status workers")
        check_eq(len(st["slots"]), 5, "number of slots")
        check_eq(len(set(s["pid"] for s in st["slots"])), 5, "distinct worker pids")
        r = c.call({"op": "map", "fn": "square", "args": [1, 2, 3]})
        check_results(r, [1, 4, 9], "Pool(5).map(f, [1, 2, 3])")


def test_cbrt():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "cbrt", "args": [27, 125, 343, 729]})
        check(r.get("ok") is True, "cbrt map failed: %s" % r)
        res = r["results"]
        check_eq(len(res), 4, "number of results")
        for got, want in zip(res, [3, 5, 7, 9]):
            check(isinstance(got, float), "cbrt result %r is not a float" % (got,))
            check(abs(got - want) <= 1e-9, "cbrt: got %r, want %r within 1e-9" % (got, want))
        # Integral floats keep their ".0" on the wire.
        c.send_raw('{"id":"raw","op":"map","fn":"cbrt","args":[27]}\n')
        check_eq(c.recv_line(), b'{"id":"raw","ok":true,"results":[3.0]}', "raw cbrt reply")


def test_getpid_spread():
    with Daemon(workers=2) as d, d.client() as c:
        sv_pid = d.call({"op": "ping"})["pid"]
        check_eq(sv_pid, d.pid, "ping pid is the supervisor's")
        slot_pids = set(d.worker_pids())
        check_eq(len(slot_pids), 2, "two worker pids in status")
        items = list(range(10, 18))
        r = c.call({"op": "map", "fn": "getpid", "args": items, "chunksize": 1})
        check(r.get("ok") is True, "getpid map failed: %s" % r)
        res = r["results"]
        check_eq([x["item"] for x in res], items, "getpid items in order")
        pids = set(x["pid"] for x in res)
        check(len(pids) >= 2, "8 items on 2 idle workers ran on only %s" % pids)
        check(sv_pid not in pids, "an item ran in the supervisor (pid %d)" % sv_pid)
        check(pids <= slot_pids, "items ran on pids %s, not all among the slots %s" %
              (pids, slot_pids))


def test_starmap_add():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "add", "star": True,
                    "args": [[1, 2], [3, 4], [-5, 5], [1.5, 2]]})
        check_results(r, [3, 7, 0, 3.5], "starmap add")
        r = c.call({"op": "map", "fn": "add", "star": True, "args": [[1, 2], [3]]})
        check_error(r, "bad_arity", "starmap add with a 1-argument item", index=1)


def test_on_error_fail():
    with Daemon(workers=2) as d, d.client() as c:
        # Both items fail; the error is the first one's, whichever finished first.
        r = c.call({"op": "map", "fn": "fail", "args": ["first", "second"], "chunksize": 1})
        err = check_error(r, "function_error", "map fail", index=0)
        check_eq(err["message"], "first", "message of the first failing item")
        # Item 1 fails after a 300 ms sleep in chunk 0; item 2 (chunk 1) fails at once
        # with another code. The reply must name item 1, the lowest index.
        r = c.call({"op": "map", "fn": "sleep_ms", "args": [300, "a", -5], "chunksize": 2})
        check_error(r, "type_error", "map sleep_ms with two bad items", index=1)
        # The default is "fail" too, and an explicit "fail" behaves the same.
        r = c.call({"op": "map", "fn": "square", "args": [1, 2, "x", 4, "y"], "chunksize": 1,
                    "on_error": "fail"})
        check_error(r, "type_error", "square of a string", index=2)


def test_on_error_collect():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "map", "fn": "sleep_ms", "args": [0, "a", 5, -1],
                    "on_error": "collect", "chunksize": 1})
        check(r.get("ok") is True, "collect map failed as a whole: %s" % r)
        res = r["results"]
        check_eq(len(res), 4, "number of results")
        check_eq(res[0], 0, "item 0")
        check_eq(res[2], 5, "item 2")
        for i, code in ((1, "type_error"), (3, "out_of_range")):
            check(isinstance(res[i], dict) and set(res[i]) == {"error"},
                  "item %d is not an error object: %r" % (i, res[i]))
            check_eq(res[i]["error"].get("code"), code, "item %d error code" % i)
            check(isinstance(res[i]["error"].get("message"), str), "item %d message" % i)
        check_eq(r.get("failed"), [1, 3], "failed indices")
        r = c.call({"op": "map", "fn": "fail", "args": ["x", "y"], "on_error": "collect"})
        check_eq(r.get("results"), [{"error": {"code": "function_error", "message": "x"}},
                                    {"error": {"code": "function_error", "message": "y"}}],
                 "collect of fail")
        check_eq(r.get("failed"), [0, 1], "failed indices of fail")
        r = c.call({"op": "map", "fn": "square", "args": [1, 2], "on_error": "collect"})
        check_results(r, [1, 4], "collect without failures")
        check_eq(r.get("failed"), [], "failed indices without failures")


def test_apply():
    with Daemon(workers=2) as d, d.client() as c:
        r = c.call({"op": "apply", "fn": "add", "args": [2, 3]})
        check(r.get("ok") is True and r.get("result") == 5, "apply add: %s" % r)
        check("results" not in r, "apply reply has results: %s" % r)
        r = c.call({"op": "apply", "fn": "echo", "args": [{"a": [1, None, True, "s"]}]})
        check_eq(r.get("result"), {"a": [1, None, True, "s"]}, "apply echo")
        r = c.call({"op": "apply", "fn": "fail", "args": ["boom"]})
        err = check_error(r, "function_error", "apply fail")
        check_eq(err["message"], "boom", "apply fail message")
        check("index" not in err, "apply error has an item index: %s" % r)
        r = c.call({"op": "apply", "fn": "add", "args": [1]})
        check_error(r, "bad_arity", "apply add with one argument")


def test_shapes():
    with Daemon(workers=3) as d, d.client() as c:
        r = c.call({"id": "a-string-id", "op": "ping"})
        check_eq(r.get("id"), "a-string-id", "string id echoed")
        check_eq(r.get("ok"), True, "ping ok")
        check_eq(r.get("protocol"), 1, "protocol version")
        check(isinstance(r.get("version"), str) and re.match(r"^\d+\.\d+\.\d+", r["version"]),
              "version string: %s" % r)
        check_eq(r.get("pid"), d.pid, "ping pid")
        check_eq(set(r), {"id", "ok", "protocol", "version", "pid"}, "ping fields")

        r = c.call({"id": -9007199254740992, "op": "functions"})
        check_eq(r.get("id"), -9007199254740992, "integer id -2^53 echoed")
        fns = {f["name"]: f for f in r["functions"]}
        for name in ("square", "cube", "cbrt", "add", "echo", "sleep_ms", "getpid", "fail",
                     "spin"):
            check(name in fns, "function %s missing from %s" % (name, sorted(fns)))
        for f in r["functions"]:
            check_eq(set(f), {"name", "kind", "min_args", "max_args", "doc"},
                     "function entry fields")
            check(isinstance(f["doc"], str) and f["doc"], "doc of %s" % f["name"])
            check(0 <= f["min_args"] <= f["max_args"], "arity of %s" % f["name"])
        check_eq((fns["add"]["min_args"], fns["add"]["max_args"]), (2, 2), "add arity")
        check_eq((fns["square"]["min_args"], fns["square"]["max_args"]), (1, 1), "square arity")

        r = c.call({"op": "status"})
        st = r["status"]
        want = {"version", "pid", "uptime_ms", "workers", "connections", "requests",
                "tasks_queued", "tasks_running", "items_done", "stopping", "slots", "hosts",
                "memory", "max_memory", "items_in_flight", "remote_clients"}
        check_eq(set(st), want, "status fields")
        check_eq(st["pid"], d.pid, "status pid")
        check_eq(st["version"], "%s" % d.call({"op": "ping"})["version"], "status version")
        check_eq(st["workers"], 3, "status workers")
        check_eq(st["stopping"], False, "status stopping")
        check_eq(st["connections"], 1, "status connections (this one)")
        check_eq(st["requests"], 0, "status requests")
        check(isinstance(st["uptime_ms"], int) and st["uptime_ms"] >= 0, "uptime_ms")
        check_eq([s["slot"] for s in st["slots"]], [0, 1, 2], "slot numbers")
        for s in st["slots"]:
            check_eq(set(s), {"slot", "pid", "state", "tasks_held", "tasks_done", "items_done",
                              "restarts", "config"}, "slot fields")
            check_eq(s["config"], 1, "slot configuration generation")
            check_eq(s["state"], "idle", "slot state at rest")
            check(s["pid"] > 0 and s["pid"] != d.pid, "slot pid %s" % s["pid"])
        done = st["items_done"]
        c.call({"op": "map", "fn": "square", "args": [1, 2, 3, 4]})
        st2 = c.call({"op": "status"})["status"]
        check_eq(st2["items_done"], done + 4, "items_done after a 4-item map")
        check_eq(sum(s["items_done"] for s in st2["slots"]),
                 sum(s["items_done"] for s in st["slots"]) + 4, "slots' items_done")
        check(st2["uptime_ms"] >= st["uptime_ms"], "uptime goes forward")


def test_integers_2p53():
    with Daemon(workers=2) as d, d.client() as c:
        c.send_raw('{"id":1,"op":"map","fn":"echo","args":[9007199254740993,-9007199254740993]}\n')
        check_eq(c.recv_line(),
                 b'{"id":1,"ok":true,"results":[9007199254740993,-9007199254740993]}',
                 "echo of 2^53+1 verbatim")
        r = c.call({"op": "map", "fn": "square", "args": [94906267]})
        check_error(r, "out_of_range", "square(94906267) > 2^53", index=0)
        c.send_raw('{"id":2,"op":"map","fn":"square","args":[94906265,-94906265]}\n')
        check_eq(c.recv_line(),
                 b'{"id":2,"ok":true,"results":[9007199136250225,9007199136250225]}',
                 "square(94906265) exact")
        r = c.call({"op": "apply", "fn": "add", "args": [9007199254740991, 1]})
        check(r.get("ok") is True and r.get("result") == 9007199254740992,
              "2^53-1 + 1: %s" % r)
        r = c.call({"op": "apply", "fn": "add", "args": [9007199254740992, 1]})
        check_error(r, "out_of_range", "2^53 + 1")
        r = c.call({"op": "map", "fn": "square", "args": [9007199254740993]})
        check_error(r, "out_of_range", "square of an argument beyond 2^53", index=0)


harness.main(globals())
