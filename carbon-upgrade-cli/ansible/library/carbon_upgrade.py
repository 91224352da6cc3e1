#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module carbon_upgrade: runs the carbon-upgrade binary with --json and returns its result."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: carbon_upgrade
short_description: Upgrade a WSO2 Carbon 4.4.x node or its databases with carbon-upgrade
description:
  - Runs C(carbon-upgrade) with C(--json) on the target host and returns what it printed.
  - C(scope=databases) copies and verifies every database on a server once and writes
    C(databases.json) into the state directory; C(scope=node) upgrades one node against
    that file; C(scope=all) is the whole run on one machine.
  - In check mode the module runs C(carbon-upgrade plan --json), which writes nothing, and
    returns the plan.
  - C(changed) is true when the run performed at least one step now (a resumed run whose
    steps were all done earlier changes nothing).
  - Secrets never go on the command line; give them in C(env) (a no_log parameter): the
    names that upgrade.toml's C(*_password_env) keys refer to.
options:
  command:
    description:
      - C(auto) runs, or resumes when this scope's journal exists in the state directory.
      - C(preflight) only checks (read-only); the result lists the failing checks.
    choices: [auto, run, resume, preflight, plan]
    default: auto
    type: str
  scope:
    choices: [all, databases, node]
    default: all
    type: str
  databases:
    description: The databases.json of the database scope (scope=node).
    type: path
  shared_from:
    description:
      - scope=node, when this node's deployment/server is the same directory (device and
        inode) as another node's that replicated it already; a directory holding that node's
        manifests/deployment-server.manifest.jsonl and userstore-edits.json.
    type: path
  binary:
    description: The carbon-upgrade executable on the target.
    default: carbon-upgrade
    type: path
  config:
    description: upgrade.toml on the target.
    type: path
  old_home: {type: path}
  new_home: {type: path}
  state_dir: {type: path}
  backup_dir: {type: path}
  strict: {type: bool, default: false}
  env:
    description: Environment for the binary (passwords named by upgrade.toml). Never logged.
    type: dict
    default: {}
"""

RETURN = r"""
rc: {description: exit code of carbon-upgrade (0 done, 1 check failed, 2 bad input, 3 unsafe), type: int}
outcome: {description: the object run/resume --json printed, type: dict}
applied: {description: steps performed by this call, type: list}
plan: {description: in check mode, the plan, type: dict}
checks: {description: for command=preflight, every check, type: list}
failing_checks: {description: for command=preflight, "name: detail" of each failing check, type: list}
msg: {description: the one-line error when failed, type: str}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

JOURNALS = {
    "all": "journal.jsonl",
    "databases": "journal-databases.jsonl",
    "node": "journal-node.jsonl",
}
REPORTS = {"all": "report.json", "databases": "report-databases.json", "node": "report-node.json"}


def state_dir_of(params):
    if params["state_dir"]:
        return params["state_dir"]
    if params["config"]:
        try:
            import tomllib  # Python 3.11+
        except ImportError:  # pragma: no cover - older controllers' targets
            return "carbon-upgrade-state"
        with open(params["config"], "rb") as handle:
            return tomllib.load(handle).get("state_dir", "carbon-upgrade-state")
    return "carbon-upgrade-state"


def common_args(params):
    args = []
    for key in ("config", "old_home", "new_home", "state_dir", "backup_dir"):
        if params[key]:
            args += ["--" + key.replace("_", "-"), params[key]]
    return args


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") or line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                break
    try:
        return json.loads(text)
    except ValueError:
        return None


def one_line_error(stderr, outcome, rc=None):
    if rc is not None and rc < 0:
        return "carbon-upgrade was killed by signal %d; run the play again to resume from its journal" % -rc
    if isinstance(outcome, dict) and outcome.get("error"):
        return outcome["error"]
    lines = [l for l in stderr.strip().splitlines() if l.startswith("error: ")]
    if lines:
        return lines[-1][len("error: "):]
    tail = stderr.strip().splitlines()
    return tail[-1] if tail else "carbon-upgrade failed"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", default="auto", choices=["auto", "run", "resume", "preflight", "plan"]),
            scope=dict(type="str", default="all", choices=["all", "databases", "node"]),
            databases=dict(type="path"),
            shared_from=dict(type="path"),
            binary=dict(type="path", default="carbon-upgrade"),
            config=dict(type="path"),
            old_home=dict(type="path"),
            new_home=dict(type="path"),
            state_dir=dict(type="path"),
            backup_dir=dict(type="path"),
            strict=dict(type="bool", default=False),
            env=dict(type="dict", default={}, no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    scope = p["scope"]
    env = dict((str(k), str(v)) for k, v in p["env"].items())
    state_dir = state_dir_of(p)
    journal = os.path.join(state_dir, JOURNALS[scope])
    command = p["command"]
    if module.check_mode and command != "preflight":
        command = "plan"
    if command == "auto":
        command = "resume" if os.path.exists(journal) else "run"

    args = [p["binary"], command] + common_args(p) + ["--scope", scope]
    databases = p["databases"]
    if databases and (command in ("run", "resume") or os.path.exists(databases)):
        args += ["--databases", databases]
    if command in ("run", "resume") and p["shared_from"]:
        args += ["--shared-deployment-from", p["shared_from"]]
    if command in ("run", "resume") and p["strict"]:
        args.append("--strict")
    args.append("--json")

    rc, stdout, stderr = module.run_command(args, environ_update=env)
    parsed = last_json(stdout)
    result = dict(rc=rc, command=command, scope=scope, cmd=args, stderr_lines=stderr.strip().splitlines()[-20:])

    if command == "plan":
        report = os.path.join(state_dir, REPORTS[scope])
        done = False
        if os.path.exists(report):
            with open(report) as handle:
                done = json.load(handle).get("status") == "completed"
        result.update(plan=parsed, changed=(not done))
        if rc != 0:
            module.fail_json(msg=one_line_error(stderr, None), **result)
        module.exit_json(**result)

    if command == "preflight":
        checks = parsed if isinstance(parsed, list) else []
        failing = ["%s: %s" % (c["name"], c["detail"]) for c in checks if c.get("status") == "fail"]
        result.update(checks=checks, failing_checks=failing, changed=False)
        if rc != 0:
            msg = "; ".join(failing) if failing else one_line_error(stderr, None)
            module.fail_json(msg=msg, **result)
        module.exit_json(**result)

    outcome = parsed if isinstance(parsed, dict) else {}
    applied = outcome.get("applied", [])
    result.update(outcome=outcome, applied=applied, changed=bool(applied))
    if rc != 0:
        module.fail_json(msg=one_line_error(stderr, outcome, rc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
