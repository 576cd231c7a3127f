"""Holds the opt-in ``pyfuse3`` alias package; this directory is what goes on sys.path.

Being a package itself only makes installers ship it along with vufuse.
"""
