"""The pure core: the show file, events, the state fold, scoring, views and secrecy, the
commands' checks and the reveal script. No I/O at all: nothing here opens a file, a socket
or a clock of its own, and importing it loads no server, log or HTTP package
(tests/test_architecture.py checks that)."""
