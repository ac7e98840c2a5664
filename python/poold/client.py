"""Low-level connections to poold (standard library only); poold.Pool is built on them.

Two kinds of connection, both newline-delimited JSON over the daemon's Unix
socket (proto/PROTOCOL.md):

- Connection: any number of map/apply/status/... requests in flight, from any
  thread. One I/O thread per connection writes the queued request lines,
  reads the replies, matches them to their requests by id, keeps the reply
  deadlines (a request past its deadline fails with "deadline" and is
  cancelled on the daemon) and fails every request in flight with
  "disconnected" as soon as the daemon goes away.
- Stream: one streaming map (imap) on a connection of its own, driven by the
  thread that iterates it, without threads: a window caps the items taken
  from the input and not yet returned, and writes and reads are interleaved
  with poll() on a non-blocking socket, so feeding never deadlocks with the
  daemon's backpressure (PROTOCOL.md section 7.5). A stream has its own
  connection because a full window stops the daemon reading the whole
  connection.

Errors are PooldError. Besides the protocol's codes (section 9) the client
uses: connect_failed (no daemon at the socket), disconnected (the connection
broke or the daemon closed it), deadline (no reply within the call's timeout;
the request was cancelled), wait_timeout (AsyncResult.get(timeout) or
IMapIterator.next(timeout) came back empty-handed; the request goes on),
protocol_error (a reply poold would never send).
"""

import collections
import heapq
import itertools
import json
import os
import select
import socket as _socket
import ssl
import sys
import threading
import time
import traceback

__all__ = ["PooldError", "Connection", "Stream", "Endpoint", "default_socket", "connect"]

# Items per feed line of a stream at most (a line also never passes the window),
# and the longest a feed line waits for the input to give more items.
FEED_MAX = 4096
BATCH_SECONDS = 0.005
RECV_SIZE = 1 << 20
# Requests written and not yet answered on one connection, at most: past its
# --max-inflight (default 1024) the daemon answers "busy", so more calls wait here.
MAX_INFLIGHT = 1000


class PooldError(Exception):
    """An error from poold or from the connection to it.

    code:    the protocol's error code (function_error, type_error, worker_died,
             timeout, unknown_function, ...) or a client-side one
             (connect_failed, disconnected, deadline, wait_timeout, cancelled,
             protocol_error)
    message: a human-readable text; branch on code, not on message
    index:   the item's position in the map's input (counting from 0) when the
             error is about one item, else None
    id:      the id of the request on its connection, when there was one
    """

    def __init__(self, code, message, index=None, id=None):
        super().__init__(code, message, index, id)
        self.code = code
        self.message = message
        self.index = index
        self.id = id

    def __str__(self):
        s = "%s: %s" % (self.code, self.message)
        if self.index is not None:
            s += " (item %d)" % self.index
        return s


def error_from_reply(reply):
    """The PooldError of an error reply."""
    err = reply.get("error")
    if not isinstance(err, dict):
        return PooldError("protocol_error", "error reply without an error object: %.200r" % reply,
                          id=reply.get("id"))
    return PooldError(str(err.get("code", "internal")), str(err.get("message", "")),
                      err.get("index"), reply.get("id"))


def default_socket():
    """The daemon's socket path as poolctl and libpoolclient find it.

    $POOLD_SOCKET when set and not empty; else, for a non-root user with
    $XDG_RUNTIME_DIR set and not empty, $XDG_RUNTIME_DIR/poold/poold.sock;
    else /run/poold/poold.sock (the system service).
    """
    s = os.environ.get("POOLD_SOCKET")
    if s:
        return s
    s = os.environ.get("XDG_RUNTIME_DIR")
    if os.geteuid() != 0 and s:
        return s + "/poold/poold.sock"
    return "/run/poold/poold.sock"


class Endpoint:
    """A daemon's address: tls://HOST:PORT (mutual TLS), tcp://HOST:PORT (plain,
    which poold serves on loopback only), unix:PATH or a socket path.

    cert, key: this client's certificate and key (PEM files) for tls://; ca: the
    CA that signed the daemon's certificate (None: the system's CAs). None takes
    $POOLD_CERT, $POOLD_KEY, $POOLD_CA. str() is the address.
    """

    def __init__(self, address, cert=None, key=None, ca=None):
        self.address = address
        self.scheme, _, rest = address.partition("://") if "://" in address else ("unix", "", "")
        self.path = address[5:] if address.startswith("unix:") else address
        self.context = None
        if self.scheme == "unix":
            return
        if self.scheme not in ("tls", "tcp"):
            raise ValueError("address %r: expected tls://HOST:PORT, tcp://HOST:PORT, "
                             "unix:PATH or a socket path" % address)
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("address %r: expected %s://HOST:PORT" % (address, self.scheme))
        self.host, self.port = host.strip("[]"), int(port)
        if self.scheme == "tls":
            cert = cert or os.environ.get("POOLD_CERT") or None
            key = key or os.environ.get("POOLD_KEY") or None
            ca = ca or os.environ.get("POOLD_CA") or None
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert or key:
                ctx.load_cert_chain(cert, key)
            self.context = ctx

    def __str__(self):
        return self.address

    def connect(self, timeout=None):
        """A connected, non-blocking socket (TLS: after the handshake)."""
        if self.scheme == "unix":
            return _connect_unix(self.path, timeout)
        try:
            s = _socket.create_connection((self.host, self.port), timeout)
        except OSError as e:
            raise PooldError("connect_failed", "cannot connect to %s: %s" %
                             (self.address, e.strerror or e)) from None
        try:
            s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            if self.context is not None:
                s = _TLSSocket(self.context.wrap_socket(s, server_hostname=self.host))
            s.setblocking(False)
        except (OSError, ValueError) as e:
            s.close()
            raise PooldError("connect_failed", "TLS with %s: %s" % (self.address, e)) from None
        return s


class _TLSSocket:
    """An SSLSocket with the plain socket's non-blocking behaviour as the callers
    use it: BlockingIOError when it must wait, b"" at the end, sendmsg, and reads
    that leave no decrypted byte inside the session (poll() stays truthful)."""

    SENDMSG_MAX = 256 * 1024

    def __init__(self, s):
        self._s = s

    def fileno(self):
        return self._s.fileno()

    def setblocking(self, flag):
        self._s.setblocking(flag)

    def recv(self, n):
        try:
            data = self._s.recv(n)
            while data and self._s.pending():
                data += self._s.recv(self._s.pending())
            return data
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None
        except ssl.SSLEOFError:
            return b""

    def send(self, data):
        try:
            return self._s.send(data)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError from None

    def sendmsg(self, bufs):
        # A retry after BlockingIOError starts with the same bytes, as OpenSSL wants.
        out, size = [], 0
        for b in bufs:
            out.append(bytes(b))
            size += len(out[-1])
            if size >= self.SENDMSG_MAX:
                break
        return self.send(b"".join(out))

    def close(self):
        self._s.close()


def connect(path, timeout=None):
    """A connected, non-blocking socket to path (an Endpoint or an address; see
    Endpoint), or PooldError connect_failed."""
    if isinstance(path, str) and ("://" in path or path.startswith("unix:")):
        path = Endpoint(path)
    if isinstance(path, Endpoint):
        return path.connect(timeout)
    return _connect_unix(path, timeout)


def _connect_unix(path, timeout=None):
    """A connected, non-blocking Unix socket to path, or PooldError connect_failed."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.setblocking(False)
    except (OSError, ValueError) as e:
        s.close()
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise PooldError("connect_failed", "cannot connect to %s: %s" % (path, why)) from None
    return s


def encode(obj):
    """Compact JSON text of obj; TypeError/ValueError name what JSON cannot carry."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except TypeError as e:
        raise TypeError("poold sends JSON values only: %s" % e) from None
    except ValueError as e:
        raise ValueError("poold sends JSON values only: %s" % e) from None


def _line(id_, body):
    """The request line of body (the JSON text of a request object, no id) with id_."""
    return b'{"id":%d,%s\n' % (id_, body[1:].encode())


class Connection:
    """A connection with an I/O thread; requests from any thread (see the module doc)."""

    def __init__(self, path, connect_timeout=None):
        self.path = path
        self.sock = connect(path, connect_timeout)
        self.lock = threading.Lock()
        # (bytes, request id or None, "head" | "rest" of a request, or a whole "line")
        self.out = collections.deque()
        self.out_off = 0                # bytes of out[0] already written
        self.pending = {}               # id -> [call, line length, fully written]
        self.unanswered = set()         # ids written whole and not answered by the daemon
        self.deadlines = []             # heap of (monotonic deadline, id)
        self.next_id = 1
        self.dead = None                # the PooldError once the connection is gone
        self.closing = None             # set by close(): the error for what is in flight
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.thread = threading.Thread(target=self._run, name="poold-io %s" % path,
                                       daemon=True)
        self.thread.start()

    # ---------------------------------------------------------------- any thread

    def submit(self, body, call, timeout=None):
        """Queue the request body (JSON text of an object without id) for call, an
        object with finish(reply) and fail(error); exactly one of them is called
        once, on the I/O thread.

        timeout: seconds until the call fails with "deadline" and the request is
        cancelled (None: no deadline). Raises the connection's PooldError when it
        is gone. Returns the request's id.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        rest = memoryview((body + "\n").encode())[1:]  # the body after its '{'
        with self.lock:
            if self.dead is not None or self.closing is not None:
                raise self.dead or self.closing
            id_ = self.next_id
            self.next_id += 1
            head = b'{"id":%d,' % id_
            self.pending[id_] = [call, len(head) + len(rest), False]
            self.out.append((head, id_, "head"))
            self.out.append((rest, id_, "rest"))
            if deadline is not None:
                heapq.heappush(self.deadlines, (deadline, id_))
        self._wake()
        return id_

    def close(self, error=None):
        """Fail what is in flight with error (default: disconnected), close, join the
        I/O thread (unless called from it). The daemon drops the work of requests
        abandoned this way, as it would after a cancel."""
        with self.lock:
            if self.closing is None:
                self.closing = error or PooldError("disconnected", "the connection was closed")
        self._wake()
        if threading.current_thread() is not self.thread:
            self.thread.join()

    def is_io_thread(self):
        return threading.current_thread() is self.thread

    def _wake(self):
        try:
            os.write(self.wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (pipe full), or shutting down

    # ----------------------------------------------------------------- I/O thread

    def _run(self):
        buf = bytearray()
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        fd = self.sock.fileno()
        try:
            while True:
                with self.lock:
                    closing = self.closing
                    if closing is None:
                        timeout = self._expire()
                        want_write = bool(self.out) and self._room() > 0
                if closing is not None:
                    self._die(closing)
                    return
                poller.register(fd, select.POLLIN | (select.POLLOUT if want_write else 0))
                events = poller.poll(None if timeout is None else max(timeout * 1000, 1))
                for efd, ev in events:
                    if efd == self.wake_r:
                        try:
                            while os.read(self.wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    if ev & select.POLLOUT:
                        self._write()
                    if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        if not self._read(buf):
                            return
        except PooldError as e:
            self._die(e)
        except OSError as e:
            self._die(PooldError("disconnected", "connection to %s broke: %s" %
                                 (self.path, e.strerror or e)))
        except BaseException as e:  # a bug here must not leave callers waiting forever
            self._die(PooldError("internal", "poold client I/O thread failed: %r" % e))
            raise

    def _expire(self):
        """Fail the calls past their deadline and queue their cancels (lock held).
        Returns the seconds to the next deadline, or None."""
        now = time.monotonic()
        while self.deadlines:
            when, id_ = self.deadlines[0]
            if id_ not in self.pending:
                heapq.heappop(self.deadlines)
                continue
            if when > now:
                return when - now
            heapq.heappop(self.deadlines)
            call = self.pending.pop(id_)[0]
            cid = self.next_id
            self.next_id += 1
            self._queue_line(_line(cid, encode({"op": "cancel", "target": id_})))
            self._deliver(call.fail, PooldError(
                "deadline", "no reply within the call's timeout; request %d cancelled" % id_,
                id=id_))
        return None

    def _deliver(self, method, arg):
        # Callbacks run here, on the I/O thread, as multiprocessing runs them on its
        # result thread. The lock is released around them: they may submit more.
        locked = self.lock.locked()
        if locked:
            self.lock.release()
        try:
            method(arg)
        except Exception:
            traceback.print_exc(file=sys.stderr)
        finally:
            if locked:
                self.lock.acquire()

    def _queue_line(self, line):
        """Queue a whole line (a cancel) ahead of the requests still waiting, at the
        first line boundary (lock held): the cap on requests must not hold it back."""
        i = 0
        if self.out and (self.out_off or self.out[0][2] == "rest"):
            i = 1
            while i < len(self.out) and self.out[i][2] == "rest":
                i += 1
        self.out.insert(i, (line, None, "line"))

    def _room(self):
        """How many more requests may start on the wire (lock held); a whole line
        that is not a request, or the rest of one begun, always may go."""
        if not self.out or self.out_off or self.out[0][2] != "head":
            return MAX_INFLIGHT
        return MAX_INFLIGHT - len(self.unanswered)

    def _write(self):
        with self.lock:
            while self.out:
                # a request begun on the wire is not in unanswered yet but holds a place
                begun = bool(self.out_off) or self.out[0][2] == "rest"
                room = MAX_INFLIGHT - len(self.unanswered) - begun
                bufs = []
                for piece, _, kind in itertools.islice(self.out, 64):
                    if kind == "head":
                        if room <= 0:
                            break
                        room -= 1
                    bufs.append(piece)
                if not bufs:
                    return
                bufs[0] = memoryview(bufs[0])[self.out_off:]
                try:
                    n = self.sock.sendmsg(bufs)
                except BlockingIOError:
                    return
                while n > 0:
                    piece, id_, kind = self.out[0]
                    step = min(n, len(piece) - self.out_off)
                    n -= step
                    self.out_off += step
                    if self.out_off < len(piece):
                        return
                    self.out.popleft()
                    self.out_off = 0
                    if kind != "rest":
                        continue
                    self.unanswered.add(id_)
                    entry = self.pending.get(id_)
                    if entry is not None:
                        entry[2] = True  # the whole line is written

    def _read(self, buf):
        """Read what is there and dispatch whole lines; False once the daemon closed."""
        try:
            chunk = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self._die(PooldError("disconnected", "poold closed the connection (%s)" %
                                 self.path))
            return False
        start = len(buf)
        buf += chunk
        i = buf.find(b"\n", start)
        begin = 0
        while i >= 0:
            self._on_line(bytes(buf[begin:i]))
            begin = i + 1
            i = buf.find(b"\n", begin)
        del buf[:begin]
        return True

    def _on_line(self, line):
        try:
            reply = json.loads(line)
        except ValueError:
            raise PooldError("protocol_error", "a reply is not JSON: %.200r" % line) from None
        if not isinstance(reply, dict):
            raise PooldError("protocol_error", "a reply is not an object: %.200r" % line)
        id_ = reply.get("id")
        with self.lock:
            if id_ is None:
                entry_id = self._blame_null(reply)
                if entry_id is None:
                    raise error_from_reply(reply)
                id_ = entry_id
            if isinstance(id_, int):
                self.unanswered.discard(id_)
            entry = self.pending.pop(id_, None) if isinstance(id_, int) else None
        if entry is None:
            return  # a cancel's answer, or the late answer to a call past its deadline
        if reply.get("ok") is True:
            self._deliver(entry[0].finish, reply)
        else:
            self._deliver(entry[0].fail, error_from_reply(reply))

    def _blame_null(self, reply):
        """The id of the request a too_large reply (id null) refuses (lock held).

        A line over the daemon's --max-line is longer than every line it accepts,
        so the longest written line still unanswered is the one refused."""
        err = reply.get("error")
        if not isinstance(err, dict) or err.get("code") != "too_large":
            return None
        written = [(e[1], i) for i, e in self.pending.items() if e[2]]
        return max(written)[1] if written else None

    def _die(self, error):
        """The connection is gone: fail every call in flight with error, close."""
        with self.lock:
            if self.dead is None:
                self.dead = error
            calls = [e[0] for e in self.pending.values()]
            self.pending.clear()
            self.unanswered.clear()
            self.deadlines.clear()
            self.out.clear()
        for call in calls:
            self._deliver(call.fail, error)
        self.sock.close()
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.wake_r = self.wake_w = -1


class Stream:
    """One streaming map on a connection of its own (see the module doc).

    open_req: the map request object without id, args and stream fields.
    window: the most items taken from the input and not yet returned by next().
    timeout: seconds each result may take to arrive (None: no limit); past it
    the stream fails with "deadline" and the connection is closed, which
    cancels the stream on the daemon.
    """

    def __init__(self, path, open_req, iterable, star, window, timeout=None):
        self.path = path
        self.sock = connect(path, timeout)
        self.poller = select.poll()
        self.open_req = dict(open_req, stream=True, window=window)
        self.it = iter(iterable)
        self.star = star
        self.window = window
        self.timeout = timeout
        self.opened = False
        self.input_done = False   # the last feed (with end) is queued
        self.fed = 0              # items taken from the input
        self.returned = 0         # values next() returned
        self.received = 0         # results read (the next ordered part's index)
        self.ready = collections.deque()
        self.out = b""
        self.out_off = 0
        self.buf = bytearray()
        self.done = False
        self.error = None

    def next(self, wait=None):
        """The next value; StopIteration at the end; PooldError on failure.

        wait: seconds to wait for it before raising wait_timeout (the stream goes
        on); None waits as long as the stream's timeout allows."""
        now = time.monotonic()
        call_deadline = None if self.timeout is None else now + self.timeout
        wait_deadline = None if wait is None else now + wait
        while True:
            if self.ready:
                self.returned += 1
                return self.ready.popleft()
            if self.error is not None:
                self.close()
                raise self.error
            if self.done:
                self.close()
                raise StopIteration
            if self.sock is None:
                raise PooldError("cancelled", "the stream was closed")
            if self.out_off >= len(self.out) and not self.input_done and \
                    self.fed - self.returned < self.window:
                try:
                    self._queue_batch()
                except BaseException:
                    self.close()  # the input raised: abandon the stream, pass it on
                    raise
            self._pump(call_deadline, wait_deadline)

    def _queue_batch(self):
        # A batch ends at n items, or once the input took BATCH_SECONDS to give
        # them: a slow producer's items travel at once, a fast one's together.
        n = min(self.window - (self.fed - self.returned), FEED_MAX)
        batch = []
        last = True
        cutoff = time.monotonic() + BATCH_SECONDS
        for item in self.it:
            batch.append(list(item) if self.star else item)
            if len(batch) >= n or time.monotonic() >= cutoff:
                last = False
                break
        self.fed += len(batch)
        if not self.opened:
            self.opened = True
            body = encode(dict(self.open_req, args=batch))
            out = _line(1, body)
            if last:
                out += b'{"id":1,"op":"end"}\n'
        else:
            req = {"op": "feed", "args": batch}
            if last:
                req["end"] = True
            out = _line(1, encode(req))
        self.input_done = last
        self.out, self.out_off = out, 0

    def _pump(self, call_deadline, wait_deadline):
        """One poll: write what is queued, read what came; deadlines."""
        now = time.monotonic()
        if call_deadline is not None and now >= call_deadline:
            self._fail(PooldError("deadline", "no result within the call's timeout; the "
                                  "stream was cancelled", id=1))
            return
        if wait_deadline is not None and now >= wait_deadline:
            raise PooldError("wait_timeout", "no result yet; the stream goes on", id=1)
        dl = [d for d in (call_deadline, wait_deadline) if d is not None]
        timeout = min(dl) - now if dl else None
        fd = self.sock.fileno()
        want_write = self.out_off < len(self.out)
        self.poller.register(fd, select.POLLIN | (select.POLLOUT if want_write else 0))
        events = self.poller.poll(None if timeout is None else max(timeout * 1000, 1))
        try:
            for _, ev in events:
                if ev & select.POLLOUT:
                    try:
                        self.out_off += self.sock.send(memoryview(self.out)[self.out_off:])
                    except BlockingIOError:
                        pass
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self._read()
        except OSError as e:
            self._fail(PooldError("disconnected", "connection to %s broke: %s" %
                                  (self.path, e.strerror or e), id=1))

    def _read(self):
        try:
            chunk = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self._fail(PooldError("disconnected", "poold closed the connection (%s)" %
                                  self.path, id=1))
            return
        start = len(self.buf)
        self.buf += chunk
        i = self.buf.find(b"\n", start)
        begin = 0
        while i >= 0 and self.error is None and not self.done:
            self._on_line(bytes(self.buf[begin:i]))
            begin = i + 1
            i = self.buf.find(b"\n", begin)
        del self.buf[:begin]

    def _on_line(self, line):
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get("id") != 1:
            self._fail(PooldError("protocol_error", "unexpected reply: %.200r" % line, id=1))
            return
        if reply.get("ok") is not True:
            self._fail(error_from_reply(reply))
        elif reply.get("done") is True:
            self.done = True
            self.close()
        elif isinstance(reply.get("results"), list) and isinstance(reply.get("index"), int):
            res = reply["results"]
            if self.open_req.get("ordered", True) and reply["index"] != self.received:
                self._fail(PooldError("protocol_error", "part at index %d, expected %d" %
                                      (reply["index"], self.received), id=1))
                return
            self.received += len(res)
            self.ready.extend(res)
        else:
            self._fail(PooldError("protocol_error", "unexpected reply: %.200r" % line, id=1))

    def _fail(self, error):
        if self.error is None and not self.done:
            self.error = error
        self.close()

    def close(self):
        """Close the connection; an unfinished stream is abandoned (cancelled)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
