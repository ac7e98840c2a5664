"""poold: Python's multiprocessing.Pool as a system service.

poold.worker turns a module of Python functions into a poold worker program
(see proto/PROTOCOL.md, "Worker programs").
"""

__all__ = ["worker"]
