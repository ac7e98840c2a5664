"""SIGHUP reload: a bad file is refused and the old configuration stays; a good one
replaces the workers one at a time; requests in flight keep their answers."""

import signal

import harness
from harness import Daemon, check, check_eq, check_error, check_results, wait_until

UPPER = """
[function upper]
kind = command
command = tr a-z A-Z
input = stdin
description = the item in capitals
"""

NAP = """
[function nap]
kind = command
command = sh -c "sleep 0.3; printf %s {}"
description = sleeps 0.3 s, returns the item
"""

REV = """
[function rev]
kind = command
command = rev
input = stdin
description = the item reversed
"""


def names(d):
    return {f["name"]: f for f in d.call({"op": "functions"})["functions"]}


def all_slots_on(d, gen):
    st = d.status()
    ok = all(s["config"] == gen and s["state"] == "idle" for s in st["slots"])
    return st if ok else None


def test_reload_adds_and_removes():
    with Daemon(workers=2, config=UPPER) as d:
        check_results(d.call({"op": "map", "fn": "upper", "args": ["ab", "c d"]}),
                      ["AB", "C D"], "upper before the reload")
        d.write_config(REV)
        d.signal(signal.SIGHUP)
        wait_until(lambda: "rev" in names(d), 20, "rev to be listed after SIGHUP")
        check("upper" not in names(d), "upper is still listed: %s" % sorted(names(d)))
        check_error(d.call({"op": "map", "fn": "upper", "args": ["x"]}), "unknown_function",
                    "a removed function")
        check_results(d.call({"op": "map", "fn": "rev", "args": ["abc", "xy"]}),
                      ["cba", "yx"], "rev after the reload")
        wait_until(lambda: all_slots_on(d, 2), 20, "every worker on configuration 2")
        check_eq(names(d)["rev"]["kind"], "command", "rev's kind")


def test_reload_bad_config_refused():
    with Daemon(workers=2, config=UPPER) as d:
        d.write_config(UPPER + "\n[function broken]\nkind = teleport\n")
        d.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in d.log(), 20, "the refusal in the log")
        want = "%s:9: " % d.config_path
        check(want in d.log(), "the log names the bad line (%s): %s" % (want, d.log()[-800:]))
        check_results(d.call({"op": "map", "fn": "upper", "args": ["ok"]}), ["OK"],
                      "the old configuration is still in force")
        check("broken" not in names(d), "the refused function is listed")
        st = d.status()
        check(all(s["config"] == 1 for s in st["slots"]), "workers replaced: %s" % st["slots"])
        check(d.alive(), "the daemon died")


def test_reload_option_waits_for_restart():
    """A [poold] option changed in the file is named in the log; the daemon keeps its own."""
    with Daemon(workers=2, config="[poold]\nmax_inflight = 100\n" + UPPER) as d:
        d.write_config("[poold]\nmax_inflight = 100\nworkers = 3\n" + REV)
        d.signal(signal.SIGHUP)
        wait_until(lambda: "rev" in names(d), 20, "rev to be listed after SIGHUP")
        check("reload: [poold] workers changed; it takes effect at the next start" in d.log(),
              "the changed option is not logged: %s" % d.log()[-600:])
        check("max_inflight changed" not in d.log(), "an unchanged option is logged")
        check_eq(d.status()["workers"], 2, "workers after the reload")


def test_reload_keeps_requests_in_flight():
    with Daemon(workers=2, config=NAP) as d, d.client() as c:
        items = ["a", "b", "c", "d", "e", "f"]
        c.send({"id": 1, "op": "map", "fn": "nap", "args": items, "chunksize": 1})
        wait_until(lambda: d.status()["tasks_running"] > 0, 20, "nap to start")
        d.write_config(REV)
        d.signal(signal.SIGHUP)
        wait_until(lambda: "rev" in names(d), 20, "rev to be listed after SIGHUP")
        check_error(d.call({"op": "map", "fn": "nap", "args": ["x"]}), "unknown_function",
                    "a new request for the removed function")
        check_results(c.recv_id(1, timeout=60), items, "the map that began before the reload")
        wait_until(lambda: all_slots_on(d, 2), 20, "every worker on configuration 2")
        check_results(d.call({"op": "map", "fn": "rev", "args": ["ab"]}), ["ba"], "rev")
        check_eq(sum(s["restarts"] for s in d.status()["slots"]), 0,
                 "a rolling replacement is not a crash")


if __name__ == "__main__":
    harness.main(globals())
