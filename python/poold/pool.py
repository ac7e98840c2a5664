"""poold.Pool: the API of multiprocessing.Pool, served by a poold daemon.

    import poold

    with poold.Pool() as pool:
        print(pool.map("square", [1, 2, 3]))          # [1, 4, 9]

The differences from multiprocessing.Pool:

- fn is the *name* of a function the daemon knows (a built-in such as
  "square", or one its poold.conf declares); Pool.functions() lists them.
  Passing a Python callable raises TypeError.
- Items, arguments and results are JSON values (lists come back for tuples).
- The workers are the daemon's: `processes` is accepted for compatibility and
  ignored; there is no initializer or maxtasksperchild.
- Every failure raises poold.PooldError (code, message, index, id).
- `timeout` (per Pool or per call, seconds) is a reply deadline: past it the
  call fails with code "deadline" and the request is cancelled on the daemon.
- imap/imap_unordered read their input lazily, at most `window` items ahead of
  what the caller consumed, so an unbounded generator runs in constant memory
  (multiprocessing reads the whole input eagerly).
"""

import os
import threading
import weakref

from .client import Connection, Endpoint, PooldError, Stream, default_socket, encode

__all__ = ["Pool", "AsyncResult", "IMapIterator", "PooldError"]

RUN, CLOSE, TERMINATE = "running", "closed", "terminated"

# Default window of imap/imap_unordered: items taken from the input and not yet
# returned, at most (the daemon's own default is 65536).
IMAP_WINDOW = 4096


def _fn_name(fn):
    if isinstance(fn, str):
        return fn
    if callable(fn):
        raise TypeError("poold runs functions by name, not Python callables: pass a name "
                        "such as %r that the daemon knows (Pool.functions() lists them; "
                        "poold.conf declares your own)" % getattr(fn, "__name__", "square"))
    raise TypeError("fn must be a function name (str), not %s" % type(fn).__name__)


def _no_kwds(kwds):
    if kwds:
        raise TypeError("poold functions take positional arguments only; kwds must be "
                        "empty, got %r" % (kwds,))


class AsyncResult:
    """The result of apply_async, map_async or starmap_async (multiprocessing's
    AsyncResult/MapResult)."""

    def __init__(self, pool, field, callback=None, error_callback=None):
        self._pool = pool
        self._field = field
        self._callback = callback
        self._error_callback = error_callback
        self._event = threading.Event()
        self._value = None
        self._error = None

    def ready(self):
        """True once the call has finished (successfully or not)."""
        return self._event.is_set()

    def successful(self):
        """True when the call finished without error; ValueError if not ready yet."""
        if not self.ready():
            raise ValueError("%r not ready" % self)
        return self._error is None

    def wait(self, timeout=None):
        """Wait until the result is ready or timeout seconds have passed."""
        self._check_thread()
        self._event.wait(timeout)

    def get(self, timeout=None):
        """The value, or raise its PooldError. With timeout (seconds) and no result
        by then: PooldError code "wait_timeout" (the call goes on, as with
        multiprocessing's TimeoutError)."""
        self.wait(timeout)
        if not self.ready():
            raise PooldError("wait_timeout", "the result is not ready after %s s" % timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def _check_thread(self):
        conn = self._pool._conn_now()
        if not self.ready() and conn is not None and conn.is_io_thread():
            raise RuntimeError("a callback cannot wait for a poold result: callbacks run on "
                               "the thread that delivers the results")

    # Connection side (the I/O thread, or terminate()).

    def finish(self, reply):
        if self._field not in reply:
            self.fail(PooldError("protocol_error", "reply without %r: %.200r" %
                                 (self._field, reply), id=reply.get("id")))
            return
        self._set(reply[self._field], None)

    def fail(self, error):
        self._set(None, error)

    def _set(self, value, error):
        if self._event.is_set():
            return
        self._value, self._error = value, error
        try:
            if error is None and self._callback is not None:
                self._callback(value)
            elif error is not None and self._error_callback is not None:
                self._error_callback(error)
        finally:
            self._event.set()
            self._pool._finished(self)


class IMapIterator:
    """The iterator of imap/imap_unordered (multiprocessing's IMapIterator).

    The stream opens at the first next(); it reads its input lazily, at most
    `window` items ahead of the values returned. close() (or dropping the
    iterator) abandons the rest, which cancels it on the daemon.
    """

    def __init__(self, stream):
        self._stream = stream

    def __iter__(self):
        return self

    def __next__(self):
        return self._stream.next()

    def next(self, timeout=None):
        """The next value; with timeout (seconds) and nothing by then, PooldError
        code "wait_timeout" (the stream goes on)."""
        return self._stream.next(timeout)

    def close(self):
        """Abandon the stream: the daemon drops the work not yet done."""
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Pool:
    """A client of a poold daemon with the API of multiprocessing.Pool.

    processes: accepted for compatibility with multiprocessing.Pool and ignored
               (the daemon's configuration decides how many workers there are).
    socket:    the daemon's socket; default as poolctl: $POOLD_SOCKET, else
               $XDG_RUNTIME_DIR/poold/poold.sock for a non-root user, else
               /run/poold/poold.sock.
    address:   a remote daemon instead: "tls://HOST:PORT" (mutual TLS, with cert,
               key and ca: this client's certificate and key and the CA of the
               daemon's; default $POOLD_CERT, $POOLD_KEY, $POOLD_CA), or
               "tcp://HOST:PORT" on loopback; default $POOLD_ADDRESS when
               socket is not given.
    timeout:   the default reply deadline of every call, in seconds (None: none).

    Connects at once (PooldError "connect_failed" when no daemon answers). One
    connection carries every map/apply call, from any number of threads; each
    imap gets a connection of its own. If the daemon restarts, the calls in
    flight fail with "disconnected" and the next call connects again.
    """

    def __init__(self, processes=None, *, socket=None, timeout=None, address=None, cert=None,
                 key=None, ca=None):
        if processes is not None:
            if isinstance(processes, str):
                raise TypeError("Pool's first argument is processes (ignored by poold); "
                                "name the daemon's socket with socket=%r" % processes)
            if processes < 1:
                raise ValueError("Number of processes must be at least 1")
        self._check_timeout(timeout)
        address = address or (None if socket else os.environ.get("POOLD_ADDRESS"))
        self._path = Endpoint(address, cert, key, ca) if address else socket or default_socket()
        self._timeout = timeout
        self._state = RUN
        self._lock = threading.Lock()
        self._outstanding = set()
        self._all_done = threading.Condition(self._lock)
        self._iters = weakref.WeakSet()
        self._conn = Connection(self._path, timeout)

    # ------------------------------------------------------------ blocking calls

    def apply(self, fn, args=(), kwds=None, *, timeout=None):
        """fn(*args) on a worker; its result. kwds must be empty (positional only)."""
        return self.apply_async(fn, args, kwds, timeout=timeout).get()

    def map(self, fn, iterable, chunksize=None, *, timeout=None):
        """[fn(x) for x in iterable], run in parallel, in order. The first failing
        item raises its PooldError (with index). chunksize: items per task (None
        or 0: the daemon sizes chunks from measured run times)."""
        return self.map_async(fn, iterable, chunksize, timeout=timeout).get()

    def starmap(self, fn, iterable, chunksize=None, *, timeout=None):
        """[fn(*args) for args in iterable], in parallel, in order (as map)."""
        return self.starmap_async(fn, iterable, chunksize, timeout=timeout).get()

    # ---------------------------------------------------------------- async calls

    def apply_async(self, fn, args=(), kwds=None, callback=None, error_callback=None, *,
                    timeout=None):
        """Start fn(*args); an AsyncResult. callback(value) or error_callback(error)
        runs on the client's I/O thread when the reply comes."""
        _no_kwds(kwds)
        req = {"op": "apply", "fn": _fn_name(fn), "args": list(args)}
        return self._submit(req, "result", timeout, callback, error_callback)

    def map_async(self, fn, iterable, chunksize=None, callback=None, error_callback=None, *,
                  timeout=None):
        """Start map(fn, iterable, chunksize); an AsyncResult of the list."""
        return self._submit(self._map_req(fn, list(iterable), chunksize, False), "results",
                            timeout, callback, error_callback)

    def starmap_async(self, fn, iterable, chunksize=None, callback=None, error_callback=None,
                      *, timeout=None):
        """Start starmap(fn, iterable, chunksize); an AsyncResult of the list."""
        items = [list(args) for args in iterable]
        return self._submit(self._map_req(fn, items, chunksize, True), "results", timeout,
                            callback, error_callback)

    # -------------------------------------------------------------------- streams

    def imap(self, fn, iterable, chunksize=None, *, timeout=None, window=IMAP_WINDOW):
        """fn(x) for each x of iterable, as an iterator, in order. The input is read
        lazily, at most `window` items ahead of the values consumed, so it may be
        unbounded. A failing item raises its PooldError when reached. timeout:
        seconds each value may take to arrive (past it: "deadline", cancelled)."""
        return self._stream(fn, iterable, chunksize, timeout, window, False, True)

    def imap_unordered(self, fn, iterable, chunksize=None, *, timeout=None,
                       window=IMAP_WINDOW):
        """As imap, but the values come as they are done, in any order."""
        return self._stream(fn, iterable, chunksize, timeout, window, False, False)

    def istarmap(self, fn, iterable, chunksize=None, *, timeout=None, window=IMAP_WINDOW,
                 ordered=True):
        """As imap, with each item an argument list (fn(*args)); a poold extension."""
        return self._stream(fn, iterable, chunksize, timeout, window, True, ordered)

    # -------------------------------------------------------------------- daemon

    def functions(self, *, timeout=None):
        """The functions the daemon knows: dicts with name, kind, min_args,
        max_args and doc (the protocol's functions op)."""
        return self._submit({"op": "functions"}, "functions", timeout).get()

    def status(self, *, timeout=None):
        """The daemon's status object (workers, slots with pids, requests, ...)."""
        return self._submit({"op": "status"}, "status", timeout).get()

    # ------------------------------------------------------------------ lifetime

    def close(self):
        """Accept no more calls; those in flight go on (join() waits for them)."""
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE

    def join(self):
        """Wait until every call in flight has finished, then disconnect. Call
        close() or terminate() first. Open imap iterators are their consumer's:
        join does not wait for them."""
        with self._lock:
            if self._state == RUN:
                raise ValueError("Pool is still running")
            while self._outstanding:
                self._all_done.wait()
        self._conn.close()

    def terminate(self):
        """Cancel every call in flight (they fail with code "cancelled"), close the
        open imap iterators and disconnect. The daemon drops their work."""
        with self._lock:
            self._state = TERMINATE
            iters = list(self._iters)
        for it in iters:
            it.close()
        self._conn.close(PooldError("cancelled", "cancelled by Pool.terminate()"))

    def __enter__(self):
        if self._state != RUN:
            raise ValueError("Pool not running")
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __del__(self):
        conn = getattr(self, "_conn", None)
        if conn is not None and conn.dead is None and conn.closing is None:
            conn.close(PooldError("cancelled", "the Pool was garbage-collected"))

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_timeout(timeout):
        if timeout is not None and not timeout > 0:
            raise ValueError("timeout must be a number of seconds > 0, or None")

    def _map_req(self, fn, items, chunksize, star):
        req = {"op": "map", "fn": _fn_name(fn), "args": items}
        if star:
            req["star"] = True
        if chunksize is not None:
            req["chunksize"] = chunksize
        return req

    def _conn_now(self):
        return self._conn

    def _connection(self):
        """The shared connection; a new one when the daemon dropped the old (lock held).
        A dead connection has closed itself; its thread may still be delivering
        failures (which take this lock), so it is not joined here."""
        if self._conn.dead is not None:
            self._conn = Connection(self._path, self._timeout)
        return self._conn

    def _submit(self, req, field, timeout, callback=None, error_callback=None):
        self._check_timeout(timeout)
        body = encode(req)
        res = AsyncResult(self, field, callback, error_callback)
        with self._lock:
            if self._state != RUN:
                raise ValueError("Pool not running")
            conn = self._connection()
            self._outstanding.add(res)
        try:
            conn.submit(body, res, self._timeout if timeout is None else timeout)
        except PooldError:
            self._finished(res)
            raise
        return res

    def _finished(self, res):
        with self._lock:
            self._outstanding.discard(res)
            if not self._outstanding:
                self._all_done.notify_all()

    def _stream(self, fn, iterable, chunksize, timeout, window, star, ordered):
        self._check_timeout(timeout)
        req = {"op": "map", "fn": _fn_name(fn), "ordered": ordered}
        if star:
            req["star"] = True
        if chunksize is not None:
            req["chunksize"] = chunksize
        if not isinstance(window, int) or not 1 <= window <= 1000000:
            raise ValueError("window must be an integer from 1 to 1000000")
        with self._lock:
            if self._state != RUN:
                raise ValueError("Pool not running")
        stream = Stream(self._path, req, iterable, star, window,
                        self._timeout if timeout is None else timeout)
        it = IMapIterator(stream)
        with self._lock:
            self._iters.add(it)
        return it
