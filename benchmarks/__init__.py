"""vufuse's one benchmark entry point: ``python -m benchmarks``.

The same workloads run under several *backends* (native, ``vufuse run``, ``proot``; later a kernel
FUSE mount and a vufuse FUSE mount served by the same daemon) in one run, on one machine, at one
CPU placement at a time, because on these 2-vCPU VMs only ratios measured side by side mean
anything: a cross-CPU wake-up alone costs 45-80 µs.

Layout, one concept per module:

- ``workloads``: the registry of workloads (what runs, how its number is read);
- ``backends``: the registry of backends (how a command is wrapped, whether it can run here);
- ``placement``: CPU placements (pinned to CPU 0, unpinned);
- ``runner``: runs the plan, prints progress, collects samples;
- ``process``: runs one command in its own process group, so a timeout leaves nothing behind;
- ``machine``: what the numbers were measured on;
- ``results``: the JSON document (schema, statistics, ratios) and the targets of the issue;
- ``report``: ``docs/performance.md`` and ``docs/performance.png`` from a JSON document;
- ``cli``: the command line.
"""
