"""Write a poold worker program in Python (standard library only).

    import poold.worker

    @poold.worker.function
    def slugify(text):
        return "-".join(text.lower().split())

    poold.worker.serve()

Declare it in poold.conf:

    [function slugify]
    kind = program
    command = python3 /path/to/this/file.py

serve() speaks the protocol of proto/PROTOCOL.md ("Worker programs"): a
handshake naming the registered functions with their arity, then one reply
line per request line, a whole chunk of items at a time. Inside a function,
print() and anything else written to stdout goes to stderr, which poold logs;
the protocol has a file descriptor of its own. An exception becomes that
item's error: TypeError as "type_error", OverflowError as "out_of_range",
anything else as "function_error", with the exception's type and message.
"""

import inspect
import itertools
import json
import os
import sys

__all__ = ["function", "register", "serve", "Error"]

PROTOCOL_VERSION = 1
# The most arguments poold passes to a function (POOLD_MAX_ARGS).
MAX_ARGS = 16

_functions = {}
_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


class Error(Exception):
    """Raise to fail an item with a chosen code (function_error, type_error, out_of_range)."""

    def __init__(self, message, code="function_error"):
        super().__init__(message)
        self.code = code


def register(f, name=None):
    """Serve f under name (default: f.__name__); returns f."""
    _functions[name or f.__name__] = f
    return f


def function(f=None, *, name=None):
    """Decorator form of register: @function or @function(name="other")."""
    if f is None:
        return lambda g: register(g, name)
    return register(f, name)


def _arity(f):
    """(min_args, max_args) from f's signature, positional parameters only."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return None
    lo = hi = 0
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            hi += 1
            if p.default is p.empty:
                lo += 1
        elif p.kind == p.VAR_POSITIONAL:
            hi = MAX_ARGS
    return min(lo, MAX_ARGS), min(max(hi, lo), MAX_ARGS)


def _handshake():
    fns = []
    for name, f in _functions.items():
        a = _arity(f)
        if a is None:
            fns.append(name)
        else:
            fns.append({"name": name, "min_args": a[0], "max_args": a[1],
                        "description": (inspect.getdoc(f) or "").split("\n")[0]})
    return {"poold": PROTOCOL_VERSION, "functions": fns}


def _error(e):
    if isinstance(e, Error):
        code = e.code
    elif isinstance(e, TypeError):
        code = "type_error"
    elif isinstance(e, OverflowError):
        code = "out_of_range"
    else:
        code = "function_error"
    return {"error": {"code": code, "message": "%s: %s" % (type(e).__name__, e)}}


def _run(f, args, star):
    """Call f on each item; a failure stands in its item's place and the rest go on."""
    out = []
    items = iter(args)
    calls = itertools.starmap if star else map
    while True:
        try:
            # list.extend keeps what it took before an exception, and the
            # iterator resumes after the item that raised.
            out.extend(calls(f, items))
            return out
        except Exception as e:  # every failure is the item's, never the program's
            out.append(_error(e))


def _encode(results):
    """The reply line; a result JSON cannot carry becomes that item's error."""
    try:
        return '{"results":' + _dumps(results) + "}"
    except (TypeError, ValueError, OverflowError, RecursionError):
        pass
    fixed = []
    for r in results:
        try:
            json.dumps(r, allow_nan=False)
            fixed.append(r)
        except (TypeError, ValueError, OverflowError, RecursionError) as e:
            fixed.append({"error": {"code": "function_error",
                                    "message": "the result is not JSON: %s" % e}})
    return json.dumps({"results": fixed}, allow_nan=False, separators=(",", ":"))


def _answer(req):
    name = req.get("fn")
    args = req.get("args") or []
    star = bool(req.get("star"))
    f = _functions.get(name)
    if f is None:
        err = {"error": {"code": "function_error",
                         "message": "this program has no function %s" % name}}
        return [err] * len(args)
    return _run(f, args, star)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def serve(functions=None):
    """Answer poold's requests on stdin/stdout until stdin closes.

    functions: an optional dict name -> callable (or a list of callables) to
    register before serving.
    """
    if isinstance(functions, dict):
        for name, f in functions.items():
            register(f, name)
    elif functions:
        for f in functions:
            register(f)
    # The protocol gets a private copy of stdout; fd 1 and sys.stdout go to stderr.
    sys.stdout.flush()
    proto = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _write_all(proto, (json.dumps(_handshake()) + "\n").encode())
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        req = json.loads(line)
        _write_all(proto, (_encode(_answer(req)) + "\n").encode())
