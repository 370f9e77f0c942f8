#!/usr/bin/env python3
"""Run cdrguard's ClickHouse DDL and queries on a current ClickHouse engine.

chdb-core embeds ClickHouse (26.x) in-process, so the DDL that
`cdrguard migrate --print --server-version X` renders for a modern server,
the analyst query pack and the Grafana dashboards' queries can be executed
without a server. deploy/deploy_test.go drives it; local/services.sh up
installs chdb-core into a venv under the scratch directory.

Input (JSON on stdin):
  {"database": "cdrguard",
   "ddl": ["CREATE DATABASE ...", ...],          # executed in order
   "data": {"alerts": "<JSONEachRow lines>", ...},  # inserted after the DDL
   "queries": [{"name": "...", "sql": "..."}]}      # run with USE database
Output (JSON on stdout):
  {"version": "26.x", "ddl_errors": [...], "insert_errors": [...],
   "queries": [{"name": "...", "rows": N, "error": "..."}]}
Exit status 0 unless the input cannot be read or chdb cannot be imported.
"""
import json
import sys
import tempfile

from chdb import session


def main():
    req = json.load(sys.stdin)
    out = {"ddl_errors": [], "insert_errors": [], "queries": []}
    with tempfile.TemporaryDirectory(prefix="cdrguard-chdb-") as path:
        s = session.Session(path)
        out["version"] = s.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        for stmt in req.get("ddl", []):
            try:
                s.query(stmt)
            except Exception as e:  # chdb raises its own error types
                out["ddl_errors"].append({"statement": stmt[:200], "error": str(e)})
        db = req["database"]
        for table, rows in sorted(req.get("data", {}).items()):
            if not rows.strip():
                continue
            try:
                s.query(f"INSERT INTO {db}.{table} FORMAT JSONEachRow\n{rows}")
            except Exception as e:
                out["insert_errors"].append({"table": table, "error": str(e)[:2000]})
        s.query(f"USE {db}")
        for q in req.get("queries", []):
            res = {"name": q["name"]}
            try:
                text = s.query(q["sql"], "JSONEachRow").bytes().decode()
                res["rows"] = len([line for line in text.splitlines() if line.strip()])
            except Exception as e:
                res["error"] = str(e)[:2000]
            out["queries"].append(res)
        s.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
