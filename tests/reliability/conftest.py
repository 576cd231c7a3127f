"""Reliability: dead, hung and hostile daemons, hostile tracees, load, session end, data safety
(docs/reliability.md).  Helpers live in reliabilityhelp.py."""
