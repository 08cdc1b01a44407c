"""How loadmaster sees and touches machines: one asyncssh connection per host, streamed /proc
frames turned into observations, the replica runtime kept on each host, and the embedded demo fleet.

    fleet.py    Fleet: the API the engine uses (observations, start/stop/list replicas)
    link.py     one host's connection, probe stream, silence → suspect/down, reconnects
    local.py    the local host through psutil
    frames.py   the probe's frames and the pure parser that makes observations of them
    scripts.py  the POSIX shell sent to hosts (probe, start, stop, list), every argument quoted
    records.py  replica records read on this machine (local and demo hosts)
    keys.py     known_hosts, strict or accept-new
    demo.py     DemoFleet: in-process SSH servers on loopback, crash / cut off / restore
"""
