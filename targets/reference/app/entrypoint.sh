#!/bin/sh
# Bound DNS stalls (see ../redis/entrypoint.sh): a lookup of a stopped container's name must
# fail within a second, not glibc's default 5 s, or a discovery thread blocks past the budget.
# Non-root: RES_OPTIONS (set in the image) carries the options; the file only when writable.
export RES_OPTIONS="${RES_OPTIONS:-timeout:1 attempts:1}"
if [ -w /etc/resolv.conf ] && ! grep -q 'timeout:1' /etc/resolv.conf; then
  echo 'options timeout:1 attempts:1' >>/etc/resolv.conf || true
fi
exec "$@"
