"""poold: Python's multiprocessing.Pool as a system service.

poold.Pool is a client with the API of multiprocessing.Pool (functions named,
not passed); every failure raises poold.PooldError. poold.worker turns a
module of Python functions into a poold worker program (see
proto/PROTOCOL.md, "Worker programs").
"""

from .client import PooldError, default_socket
from .pool import AsyncResult, IMapIterator, Pool

__all__ = ["Pool", "PooldError", "AsyncResult", "IMapIterator", "default_socket", "worker"]
