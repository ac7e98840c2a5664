"""check_registered.py TEST_FILE CASE...: the cases meson registers are exactly the file's."""

import subprocess
import sys

listed = subprocess.run([sys.executable, sys.argv[1], "--list"], stdout=subprocess.PIPE,
                        check=True, timeout=30).stdout.decode().split()
registered = sys.argv[2:]
missing = sorted(set(listed) - set(registered))
unknown = sorted(set(registered) - set(listed))
if missing or unknown:
    print("%s: not registered in meson.build: %s; registered but not defined: %s" %
          (sys.argv[1], missing or "-", unknown or "-"))
    sys.exit(1)
print("%s: %d cases, all registered" % (sys.argv[1], len(listed)))
