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


def node_result(host):
    """A node's own run: the follower task's when it shares deployment/server, else the first."""
    follower = host.get("carbon_node_follower")
    if follower and not follower.get("skipped"):
        return follower
    return host.get("carbon_node")


def cluster_report(hostvars, names, database_host, check_mode=False):
    nodes = []
    for name in names:
        host = hostvars[name]
        entry = {"host": name, "deployment_replicated_by": host.get("carbon_shared_leader", name)}
        entry.update(summary(node_result(host)))
        nodes.append(entry)
    databases = {"host": database_host}
    databases.update(summary(hostvars[database_host].get("carbon_databases")))
    return {"check_mode": bool(check_mode), "databases": databases, "nodes": nodes}


def shared_leader(hostvars, names, me):
    """The first of `names` whose deployment/server is the same directory (device and inode) as `me`'s."""
    mine = hostvars[me].get("carbon_deployment_id")
    if not mine:
        return me
    for name in names:
        if hostvars[name].get("carbon_deployment_id") == mine:
            return name
    return me


class FilterModule(object):
    def filters(self):
        return {"carbon_cluster_report": cluster_report, "carbon_shared_leader": shared_leader}
