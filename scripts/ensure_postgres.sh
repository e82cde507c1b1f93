#!/usr/bin/env bash
# Start the machine's PostgreSQL when it does not answer, so PostgreSQL tests run instead of skipping.
set -u
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && exit 0; sleep 1; done
fi
echo "warning: PostgreSQL is not available at 127.0.0.1:5432; PostgreSQL tests will fail" >&2
exit 0
