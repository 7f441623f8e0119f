"""The Channel Access client: trio tasks and sockets built on the sans-I/O core.

Everything that touches the network lives in this package; ``caproto`` itself stays free of I/O.
"""
