#!/bin/sh
# Run once by the postgres image when it creates the primary's database
# (/docker-entrypoint-initdb.d): lets the replica stream from it with the same password.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
