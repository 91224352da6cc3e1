# -*- coding: utf-8 -*-
"""carbon_cluster_report: one line per node (and the database scope) from the registered results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def summary(result):
    """What a registered carbon_upgrade result says, in the report's shape."""
    if not result or result.get("skipped"):
        return {"status": "not run"}
    if "plan" in result:
        plan = result.get("plan") or {}
        return {
            "status": "planned" if not result.get("failed") else "failed",
            "steps": [str(s) for s in plan.get("steps", [])],
            "error": result.get("msg") if result.get("failed") else None,
        }
    outcome = result.get("outcome") or {}
    status = outcome.get("status") or ("failed" if result.get("failed") else "unknown")
    return {
        "status": status,
        "rc": result.get("rc"),
        "applied": outcome.get("applied", []),
        "already_done": outcome.get("already_done", []),
        "failed_step": outcome.get("failed_step"),
        "error": result.get("msg") if result.get("failed") else None,
        "report": outcome.get("report_md"),
    }


def cluster_report(hostvars, names, database_host, check_mode=False):
    nodes = []
    for name in names:
        entry = {"host": name}
        entry.update(summary(hostvars[name].get("carbon_node")))
        nodes.append(entry)
    databases = {"host": database_host}
    databases.update(summary(hostvars[database_host].get("carbon_databases")))
    return {"check_mode": bool(check_mode), "databases": databases, "nodes": nodes}


class FilterModule(object):
    def filters(self):
        return {"carbon_cluster_report": cluster_report}
