#!/bin/sh
# A "nutcracker" that passes pre-flight (-V names the wanted version, -t succeeds) but dies
# when started, as a broken build would.
case "$1" in
-V) printf 'This is nutcracker-0.5.0\nasync event backend: epoll\n\n' >&2; exit 0 ;;
-t) echo "nutcracker: configuration file '$3' syntax is ok" >&2; exit 0 ;;
esac
echo "nutcracker: fatal: simulated crash at start" >&2
exit 1
