"""Worker hosts: agents (poold --join) serving a supervisor (--hosts) over sealed nanomsg tcp.

Loopback cases run anywhere; netns_* cases need root and `ip netns` (else skipped, 77):
they put each host in a network namespace of its own, joined to the supervisor's by a
veth pair, and always tear them down.
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness
from harness import Daemon, Skip, check, check_eq, check_results, wait_until

TIMEOUT_MS = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(dirname, name="cluster.key"):
    path = os.path.join(dirname, name)
    subprocess.run([harness.poold_bin(), "--keygen", path], check=True, stdout=subprocess.DEVNULL)
    check_eq(os.stat(path).st_mode & 0o777, 0o600, "key file mode")
    return path


class Agent:
    """One poold --join process; its log in the daemon's temp dir."""

    def __init__(self, d, join, endpoint, key, workers=2, netns=None, config=None, name="a"):
        self.log_path = os.path.join(d.keydir, "agent-%s.log" % name)
        argv = [harness.poold_bin(), "--join", join, "--host-endpoint", endpoint,
                "--cluster-key", key, "--workers", str(workers),
                "--host-timeout-ms", str(TIMEOUT_MS)]
        if config:
            cpath = os.path.join(d.keydir, "agent-%s.conf" % name)
            fd = os.open(cpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(config)
            argv += ["--config", cpath]
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        env = dict(os.environ, TMPDIR=d.dir, **harness.SANITIZER_ENV)
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=env)
        self.endpoint = endpoint

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def hosts(d):
    return d.status()["hosts"]


def wait_hosts_ready(d, endpoints, timeout=20):
    def ready():
        hs = {h["address"]: h for h in hosts(d)}
        return hs if all(hs.get(e, {}).get("state") == "ready" for e in endpoints) else None
    return wait_until(ready, timeout, "hosts %s ready" % endpoints)


def sealed_drops(d):
    r = d.call({"op": "metrics"})
    for line in r["metrics"].splitlines():
        if line.startswith("poold_sealed_drops_total "):
            return int(line.split()[1])
    raise AssertionError("no poold_sealed_drops_total in metrics")


# ------------------------------------------------------- nanomsg SP over tcp

SP_PUSH, SP_PULL = 0x50, 0x51


def sp_header(proto):
    return b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00"


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError("peer closed")
        out += chunk
    return out


def sp_push(port, messages):
    """Send each message to a nanomsg PULL at 127.0.0.1:port as a PUSH peer would."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(sp_header(SP_PUSH))
        check_eq(recv_exact(s, 8), sp_header(SP_PULL), "SP handshake from the hosts port")
        for m in messages:
            s.sendall(struct.pack(">Q", len(m)) + m)
        time.sleep(0.2)  # let nanomsg read them before the close


def capture_join(d, key):
    """A sealed JOIN, as a real agent sends it, captured by a fake supervisor we run."""
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    srv.settimeout(20)
    a = Agent(d, "tcp://127.0.0.1:%d" % port, "tcp://127.0.0.1:%d" % free_port(), key,
              workers=1, name="captured")
    try:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(20)
            conn.sendall(sp_header(SP_PULL))
            check_eq(recv_exact(conn, 8), sp_header(SP_PUSH), "SP handshake from the agent")
            n = struct.unpack(">Q", recv_exact(conn, 8))[0]
            return recv_exact(conn, n)
    finally:
        a.stop()
        srv.close()


# ------------------------------------------------------------------- cases


def run_cluster(fn, workers=1, config=None, addr="127.0.0.1", port=None):
    """fn(daemon, join address, key, agents) with a supervisor listening for hosts at addr."""
    keydir = tempfile.mkdtemp(prefix="poold-key-", dir="/tmp")
    key = keygen(keydir)
    port = port or free_port()
    join = "tcp://%s:%d" % ("*" if addr == "0.0.0.0" else addr, port)
    d = Daemon(workers=workers, config=config,
               args=["--hosts", join, "--cluster-key", key, "--host-timeout-ms", str(TIMEOUT_MS)])
    d.keydir = keydir
    agents = []
    try:
        d.start()
        fn(d, join, key, agents)
    finally:
        for a in agents:
            a.stop()
        d.cleanup()
        shutil.rmtree(keydir, ignore_errors=True)


def test_loopback_map():
    def body(d, join, key, agents):
        eps = ["tcp://127.0.0.1:%d" % free_port() for _ in range(2)]
        agents += [Agent(d, join, eps[i], key, workers=2, name=str(i)) for i in range(2)]
        wait_hosts_ready(d, eps)
        n = 200000
        r = d.call({"op": "map", "fn": "square", "args": list(range(n)), "chunksize": 500})
        check_results(r, [i * i for i in range(n)], "200,000 squares over two hosts")
        hs = {h["address"]: h for h in hosts(d)}
        for e in eps:
            check(hs[e]["items_done"] > 0, "host %s did no item: %s" % (e, hs))
            check_eq(hs[e]["workers"], 2, "workers of %s" % e)
            check_eq(hs[e]["generation"], 1, "generation of %s" % e)
            check(hs[e]["last_heartbeat_ms"] < 2 * TIMEOUT_MS, "stale heartbeat %s" % hs[e])
        check(sum(h["items_done"] for h in hs.values()) < n, "nothing ran locally")
    run_cluster(body)


def test_loopback_agent_killed():
    def body(d, join, key, agents):
        eps = ["tcp://127.0.0.1:%d" % free_port() for _ in range(2)]
        agents += [Agent(d, join, eps[i], key, workers=2, name=str(i)) for i in range(2)]
        wait_hosts_ready(d, eps)
        n = 300
        with d.client() as c:
            rid = c.send({"op": "map", "fn": "sleep_ms", "args": [20] * n, "chunksize": 2})
            wait_until(lambda: any(h["address"] == eps[0] and h["tasks_held"] > 0
                                   for h in hosts(d)), 20, "host 0 to hold tasks")
            agents[0].proc.kill()
            r = c.recv_id(rid)
        check_results(r, [20] * n, "every item answered once after a host was SIGKILLed")
        wait_until(lambda: any(h["address"] == eps[0] and h["state"] == "lost"
                               for h in hosts(d)), 10, "host 0 lost")
        check("lost (generation 1)" in d.log(), "no log line for the lost host")
        # It comes back as generation 2.
        agents.append(Agent(d, join, eps[0], key, workers=1, name="back"))
        hs = wait_hosts_ready(d, [eps[0]])
        check_eq(hs[eps[0]]["generation"], 2, "generation after coming back")
        check_results(d.call({"op": "map", "fn": "square", "args": list(range(1000))}),
                      [i * i for i in range(1000)], "map after the host came back")
    run_cluster(body)


def test_wrong_key():
    def body(d, join, key, agents):
        bad = keygen(d.keydir, "other.key")
        ep = "tcp://127.0.0.1:%d" % free_port()
        before = sealed_drops(d)
        agents.append(Agent(d, join, ep, bad, workers=1, name="bad"))
        wait_until(lambda: sealed_drops(d) >= before + 3, 20, "the bad key's joins dropped")
        check_eq(hosts(d), [], "a host with a wrong key joined")
        check_results(d.call({"op": "map", "fn": "square", "args": [1, 2, 3]}), [1, 4, 9],
                      "map with a wrong-key peer around")
        check("authentication failed" in d.log(), "no log line for the failed authentication")
        check(agents[0].proc.poll() is None, "the agent gave up")
    run_cluster(body)


def test_replay_and_garbage():
    def body(d, join, key, agents):
        port = int(join.rsplit(":", 1)[1])
        join_msg = capture_join(d, key)
        items = d.status()["items_done"]
        before = sealed_drops(d)
        sp_push(port, [join_msg, join_msg])
        wait_until(lambda: sealed_drops(d) == before + 1, 10, "the replayed join dropped")
        check_eq([h["state"] for h in hosts(d)], ["joining"], "hosts after one join")
        rnd = random.Random(11)
        sp_push(port, [bytes(rnd.randrange(256) for _ in range(n)) for n in (1, 100, 5000)])
        wait_until(lambda: sealed_drops(d) == before + 4, 10, "three random messages dropped")
        # A byte of a sealed message changed: fails authentication.
        bent = bytearray(join_msg)
        bent[40] ^= 1
        sp_push(port, [bytes(bent)])
        wait_until(lambda: sealed_drops(d) == before + 5, 10, "a changed message dropped")
        # Raw bytes that are not even nanomsg's framing: the connection is closed.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(bytes(rnd.randrange(256) for _ in range(4096)))
        check_eq(d.status()["items_done"], items, "items done by the dropped messages")
        check_results(d.call({"op": "map", "fn": "square", "args": [5, 6]}), [25, 36],
                      "map after garbage on the hosts port")
    run_cluster(body)


def test_refused_functions():
    def body(d, join, key, agents):
        ep = "tcp://127.0.0.1:%d" % free_port()
        conf = "[function extra]\nkind = command\ncommand = expr {} + 1\n"
        agents.append(Agent(d, join, ep, key, workers=1, config=conf, name="odd"))
        wait_until(lambda: "refused this host" in agents[0].log(), 20, "the agent's refusal")
        check_eq(d.log().count("host %s refused" % ep), 1, "supervisor refusal lines")
        check_eq([h["state"] for h in hosts(d)], ["refused"], "hosts")
        check_eq(agents[0].log().count("refused this host"), 1, "agent refusal lines")
        check_results(d.call({"op": "map", "fn": "square", "args": [2]}), [4], "map")
    run_cluster(body)



# ----------------------------------------------------------- network namespaces


class BadLink:
    """A TCP relay on loopback that delays every chunk of bytes by delay_s, each way,
    and cuts the connection (both sides, abruptly) after about cut_bytes: what a lossy,
    slow link does to a host's connection, without netem."""

    def __init__(self, target_port, delay_s=0.02, cut_bytes=20000):
        self.target, self.delay, self.cut = target_port, delay_s, cut_bytes
        self.cuts = 0
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            budget = [random.randint(self.cut // 2, self.cut)]
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst, budget),
                                 daemon=True).start()

    def _pump(self, src, dst, budget):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(self.delay)
                budget[0] -= len(data)
                if budget[0] < 0:
                    self.cuts += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                x.close()
            except OSError:
                pass

    def close(self):
        self.stopping = True
        self.lsock.close()


def test_loopback_bad_link():
    """20 ms each way and connections cut every few hundred KB: still exactly one answer
    per item (tc netem does the same between namespaces where the kernel has sch_netem)."""
    def body(d, join, key, agents):
        link = BadLink(int(join.rsplit(":", 1)[1]))
        try:
            eps = ["tcp://127.0.0.1:%d" % free_port() for _ in range(2)]
            agents += [Agent(d, "tcp://127.0.0.1:%d" % link.port, eps[i], key, workers=1,
                             name=str(i)) for i in range(2)]
            wait_hosts_ready(d, eps, timeout=60)
            n = 20000  # ~2 MB of results come back over the link
            items = ["%06d" % i + "x" * 94 for i in range(n)]
            r = d.call({"op": "map", "fn": "echo", "args": items, "chunksize": 100},
                       timeout=120)
            check_results(r, items, "items through a slow, cut link")
            print("the link was cut %d times" % link.cuts)
            check(link.cuts > 0, "the link was never cut: the test proves nothing")
            check(sum(h["items_done"] for h in hosts(d)) > 0, "the hosts did nothing")
        finally:
            link.close()
    run_cluster(body)


class Netns:
    """Namespaces with a veth pair each to this one (10.R.i.1 here, 10.R.i.2 there)."""

    def __init__(self, count):
        if os.geteuid() != 0:
            raise Skip("network namespaces need root")
        self.tag = "%04x" % random.randrange(1 << 16)
        self.r = 200 + random.randrange(50)
        self.names = []
        try:
            for i in range(count):
                ns, v = "poold-%s-%d" % (self.tag, i), "ph%s%d" % (self.tag, i)
                self._ip("netns", "add", ns)
                self.names.append(ns)
                self._ip("link", "add", v, "type", "veth", "peer", "name", v + "h")
                self._ip("link", "set", v + "h", "netns", ns)
                self._ip("addr", "add", "%s/24" % self.here(i), "dev", v)
                self._ip("link", "set", v, "up")
                self._ip("-n", ns, "addr", "add", "%s/24" % self.there(i), "dev", v + "h")
                self._ip("-n", ns, "link", "set", v + "h", "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except (OSError, subprocess.CalledProcessError) as e:
            self.close()
            raise Skip("ip netns does not work here: %s" % e)

    @staticmethod
    def _ip(*args):
        subprocess.run(("ip",) + args, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def here(self, i):
        return "10.%d.%d.1" % (self.r, i)

    def there(self, i):
        return "10.%d.%d.2" % (self.r, i)

    def veth(self, i):
        return "ph%s%d" % (self.tag, i)

    def close(self):
        for i, ns in enumerate(self.names):
            subprocess.run(["ip", "link", "del", self.veth(i)], stderr=subprocess.DEVNULL)
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.names = []


def run_netns(fn, workers=(1, 2)):
    """fn(daemon, netns, endpoints) with a host agent in each namespace, ready."""
    net = Netns(len(workers))
    port = free_port()

    def body(d, join, key, agents):
        eps = []
        for i, w in enumerate(workers):
            eps.append("tcp://%s:%d" % (net.there(i), port + 1))
            agents.append(Agent(d, "tcp://%s:%d" % (net.here(i), port), eps[i], key,
                                workers=w, netns=net.names[i], name=str(i)))
        wait_hosts_ready(d, eps)
        fn(d, net, eps, agents)
    try:
        run_cluster(body, addr="0.0.0.0", port=port)
    finally:
        net.close()


def test_netns_map():
    def body(d, net, eps, agents):
        n = 200000
        r = d.call({"op": "map", "fn": "square", "args": list(range(n)), "chunksize": 500})
        check_results(r, [i * i for i in range(n)], "200,000 squares over two namespaces")
        hs = {h["address"]: h for h in hosts(d)}
        for e in eps:
            check(hs[e]["items_done"] > 0, "host %s did no item: %s" % (e, hs))
    run_netns(body)


def test_netns_killed_and_cut_off():
    def body(d, net, eps, agents):
        n = 400
        with d.client() as c:
            rid = c.send({"op": "map", "fn": "getpid", "args": list(range(n)), "chunksize": 1})
            rid2 = c.send({"op": "map", "fn": "sleep_ms", "args": [10] * n, "chunksize": 2})
            wait_until(lambda: all(h["tasks_held"] > 0 for h in hosts(d)), 20,
                       "both hosts to hold tasks")
            agents[0].proc.kill()
            subprocess.run(["ip", "link", "set", net.veth(1), "down"], check=True)
            r = c.recv_id(rid)
            r2 = c.recv_id(rid2)
        check(r.get("ok") is True, "map: %s" % harness._short(r))
        check_eq([x["item"] for x in r["results"]], list(range(n)), "items, once each, in order")
        check_results(r2, [10] * n, "the second map")
        states = wait_until(lambda: [h["state"] for h in hosts(d)] == ["lost", "lost"] or None,
                            10, "both hosts lost")
        check(states, "hosts")
    run_netns(body)


def test_netns_netem():
    def body(d, net, eps, agents):
        for i in range(2):
            for pre, dev in (([], net.veth(i)), (["ip", "netns", "exec", net.names[i]],
                                                 net.veth(i) + "h")):
                r = subprocess.run(pre + ["tc", "qdisc", "add", "dev", dev, "root", "netem",
                                          "delay", "20ms", "loss", "1%"],
                                   stderr=subprocess.PIPE)
                if r.returncode != 0:
                    raise Skip("tc netem does not work here (sch_netem): %s" %
                               r.stderr.decode(errors="replace").strip())
        n = 20000
        r = d.call({"op": "map", "fn": "square", "args": list(range(n)), "chunksize": 100})
        check_results(r, [i * i for i in range(n)], "squares through 20 ms delay and 1% loss")
        check(sum(h["items_done"] for h in hosts(d)) > 0, "the hosts did nothing")
    run_netns(body)


if __name__ == "__main__":
    harness.main(globals())
