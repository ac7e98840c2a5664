#!/usr/bin/env python3
"""A poold worker program in Python: text functions served with poold.worker.

    [function slugify]
    kind = program
    command = python3 /usr/share/doc/poold/examples/programs/pyfuncs.py
"""

import collections
import os
import re
import sys
import unicodedata

try:
    import poold.worker as worker
except ImportError:  # run from the source tree, before `meson install`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    import poold.worker as worker


@worker.function
def slugify(text):
    """A URL slug of a title: "Héllo, World!" -> "hello-world"."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@worker.function
def word_freq(text, top=3):
    """The top most frequent words of a text, as [word, count] pairs."""
    words = re.findall(r"[a-z']+", text.lower())
    return [list(p) for p in collections.Counter(words).most_common(top)]


@worker.function
def shout(text):
    """Upper-cases text; says so with print(), which goes to poold's log."""
    print("shouting", text)
    return text.upper()


if __name__ == "__main__":
    worker.serve()
