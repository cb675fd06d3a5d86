"""The worker runtime: a supervisor process that runs jobs from the store.

    supervisor.py  the process: registration, the one poll loop, signals, stopping
    executor.py    the job slots: claim -> spawn -> reap -> finish (+ claim) in one call
    services.py    the periodic services on the loop (heartbeat, rescue, promotion,
                   output trimming, cancel checks, the poll safety net), each on an
                   injected clock
    runner.py      one command's process group (or cgroup): spawn, timeout, kill, reap
    capture.py     a run's output in a memfd, read live through /proc, trimmed
    fence.py       self-fencing: the lease as the supervisor can prove it, the watchdog
    outputpub.py   which of a running job's output to publish through the store

Nothing here is imported by `import queuectl.worker`: the CLI's reading side uses
`capture` alone, and must not pay for the supervisor's imports.
"""
