#!/bin/sh
# Prints its arguments on stdout, a message on stderr, LC_ALL, and exits with $EXIT.
echo "out:$*"
echo "lc:$LC_ALL"
echo "err:boom" >&2
exit "${EXIT:-0}"
