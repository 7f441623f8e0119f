"""Command-line tools that print what EPICS Base's caget, caput, camonitor and cainfo print.

Run them as ``caproto-get`` etc. or ``python -m caproto.commandline.get``.
"""
