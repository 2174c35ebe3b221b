"""Operating-system calls beyond the standard library, each with a portable path.

- ``winfiles``: Windows file sharing, who holds a file (Restart Manager), replace with
  retry.
- ``sparse``: sizing a staged file without writing it (sparse on Windows too).
- ``procwait``: waiting for another process to exit (``--wait-pid``).

May import: the top-level modules of ``core`` only.
"""
