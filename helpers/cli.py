"""``python -m helpers``: the local platform, the tiny model, the labs.

    python -m helpers up                 build the model if needed, serve the model list's `local:` models
    python -m helpers status [--json]    what runs where
    python -m helpers down               stop everything the workshop started
    python -m helpers run-labs --labs 0,1 --out DIR   (default DIR: <state dir>/run-labs)
    python -m helpers lab-times DIR/summary.json      (README's lab times and each lab's header, from a run)
    python -m helpers reference-outputs DIR           (instructor guide: the executed labs as HTML)
    python -m helpers instructor provision|check|reset|report|teardown   (the room; see README)
    python -m helpers instructor bundle --out DIR   the room bundle: set-up without the network
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from .errors import WorkshopError

DEFAULT_DEPLOYMENT = "parasol-tiny"


def cmd_config(args: argparse.Namespace) -> int:
    from .settings import print_config

    print_config()
    return 0


def cmd_build_model(args: argparse.Namespace) -> int:
    from .models import ensure_tiny_model

    info = ensure_tiny_model()
    print(json.dumps({"path": info.path, "recipe_hash": info.recipe_hash,
                      "held_out_accuracy": info.held_out_accuracy, "train_seconds": info.train_seconds}, indent=2))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .models import MODEL_NAME, ensure_tiny_model
    from .platform import get_platform

    ensure_tiny_model()
    platform = get_platform(args.platform)
    if platform.kind != "local":  # on a cluster the GitOps controller serves the list
        print(f"starting {DEFAULT_DEPLOYMENT} on the {platform.kind} platform (about a minute) ...", flush=True)
        deployment = platform.deploy(MODEL_NAME, DEFAULT_DEPLOYMENT, port=args.port)
        print(f"ready: {deployment.name} at {deployment.endpoint}")
        return 0
    from . import gitops
    from .maas import start_gateway

    model_list = Path(args.model_list) if getattr(args, "model_list", None) else None
    print(f"serving the `local:` models of {model_list or gitops.committed_list()} (about a minute each) ...",
          flush=True)
    rows = gitops.reconcile(platform, model_list, port=args.port)
    for row in rows:
        print(f"  {row['model']:24} {row['action']}")
    first = platform.get(rows[0]["model"])
    print(f"try:   curl -s {first.endpoint}/chat/completions -H 'Content-Type: application/json' "
          f"-d '{{\"model\": \"{first.name}\", \"messages\": [{{\"role\": \"user\", \"content\": \"What is 30 + 12?\"}}]}}'")
    gateway = start_gateway(platform)
    print(f"ready: the MaaS gateway at {gateway.url} (models {', '.join(gateway.models)}; keys from Lab 5)")
    return 0


def cmd_workshop(args: argparse.Namespace) -> int:
    from .workshop import run_workshop

    return run_workshop(lambda: cmd_up(args))


def cmd_status(args: argparse.Namespace) -> int:
    from .platform import get_platform

    from .gateway.postgres import running_postgres
    from .gateway.proxy import running_gateway
    from .registry import running_registry
    from .environment import cpu_report

    platform = get_platform(args.platform)
    deployments = platform.list()
    registry, gateway, database = running_registry(), running_gateway(), running_postgres()
    cpu = cpu_report()
    if args.json:
        payload = {"platform": platform.kind, "cpu": cpu,
                   "deployments": [{"name": d.name, "model": d.model, "endpoint": d.endpoint,
                                    "status": d.status, **d.details} for d in deployments],
                   "registry": {"address": registry.address, "pid": registry.pid} if registry else None,
                   "gateway": {"url": gateway.url, "models": gateway.models, "pid": gateway.pid} if gateway else None,
                   "postgres": {"port": database.port, "pid": database.pid} if database else None}
        print(json.dumps(payload, indent=2))
        return 0
    print(f"{'cpu':20} {cpu['cpu']}; {cpu['vLLM serves on this CPU']}")
    if not deployments:
        print(f"nothing deployed on the {platform.kind} platform")
    for d in deployments:
        print(f"{d.name:20} {d.status:6} {d.endpoint}  (PID {d.details.get('pid')}, model {d.model})")
    if registry:
        print(f"{'registry':20} ready  {registry.address}  (PID {registry.pid})")
    if gateway:
        print(f"{'gateway':20} ready  {gateway.url}  (PID {gateway.pid}, models {', '.join(gateway.models)})")
    if database:
        print(f"{'postgres':20} ready  {database.host}:{database.port}  (PID {database.pid})")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from .platform import get_platform

    from .maas import stop_gateway
    from .registry import stop_registry

    removed = stop_gateway()  # first: it holds connections to the models and the database
    removed += get_platform(args.platform).undeploy_all()
    if stop_registry():
        removed.append("registry")
    print(f"stopped: {', '.join(removed)}" if removed else "nothing was running")
    return 0


def cmd_reset_gateway(args: argparse.Namespace) -> int:
    import shutil

    from .gateway.postgres import cluster_dir
    from .maas import stop_gateway
    from .settings import get_settings

    if not args.yes:
        print("this deletes every key, plan and ledger row of the gateway; add --yes to do it", file=sys.stderr)
        return 2
    stop_gateway()
    for folder in (cluster_dir(), get_settings().state_dir / "gateway"):
        shutil.rmtree(folder, ignore_errors=True)
    print(f"gateway data deleted ({cluster_dir()}); the next `up` starts with an empty ledger")
    return 0


def cmd_run_labs(args: argparse.Namespace) -> int:
    from .runlabs import parse_parameter, run_labs
    from .settings import get_settings

    labs = [int(n) for n in args.labs.split(",")] if args.labs else None
    parameters = dict(parse_parameter(text) for text in args.parameter)
    out = Path(args.out) if args.out else get_settings().state_dir / "run-labs"
    summary = run_labs(labs, args.platform or "local", out, parameters, unsolved=args.unsolved, two_pass=args.two_pass)
    for lab in summary["labs"]:
        print(f"{lab['lab']}: {lab['status']} in {lab['seconds']:.0f} s  {json.dumps(lab['figures'])[:300]}")
        if lab["error"]:
            print(lab["error"][-2000:])
    print(f"summary: {out / 'summary.json'}")
    return 0 if summary["passed"] else 1


def _check_or_write(folder: str, stale: Callable[[], list[str]], write: Callable[[], list[Path]],
                    check: bool, command: str) -> int:
    """`--check`: report stale generated files (exit 1); otherwise regenerate them."""
    if check:
        names = stale()
        if names:
            print(f"{folder} is out of date: {', '.join(names)}. Run: python -m helpers {command}")
            return 1
        print(f"{folder} is up to date")
        return 0
    for path in write():
        print(f"wrote {path}")
    return 0


def cmd_make_labs(args: argparse.Namespace) -> int:
    from .labgen import generate_labs, stale_labs

    return _check_or_write("labs/", stale_labs, generate_labs, args.check, "make-labs")


def cmd_lab_times(args: argparse.Namespace) -> int:
    from .labtimes import write_lab_times
    from .settings import get_settings

    times = write_lab_times(Path(args.summary), get_settings().root / "README.md")
    for time in times:
        print(f"{time.lab}: machine {time.machine_text()} (measured), reading and typing about "
              f"{time.attendee_min} min (estimated: {time.words} words, {time.code_lines} code lines, "
              f"{time.exercises} exercises)")
    print("rewrote README.md's lab table, each solution's time line and labs/")
    return 0


def cmd_reference_outputs(args: argparse.Namespace) -> int:
    from .reference import export
    from .settings import get_settings

    out = Path(args.out) if args.out else get_settings().root / "reference-outputs"
    for page in export(Path(args.run), out):
        print(f"wrote {page}")
    print(f"open {out / 'index.html'}")
    return 0


def cmd_render_manifests(args: argparse.Namespace) -> int:
    from .kserve import stale_manifests, write_manifests
    from .settings import get_settings

    root = get_settings().root / "manifests"
    return _check_or_write("manifests/", lambda: stale_manifests(root), lambda: write_manifests(root),
                           args.check, "render-manifests")


def cmd_cluster_secrets(args: argparse.Namespace) -> int:
    from .cluster.manifests import READER_FILE, load_model_list, write_secrets_env
    from .settings import get_settings

    root = get_settings().root / "manifests"
    path = write_secrets_env(root, load_model_list().namespace, overwrite=args.rotate)
    print(f"credentials in {path} and {root / READER_FILE} (mode 600, gitignored); kustomize turns them into the "
          "Secrets maas-gateway-secrets and maas-ledger-reader")
    return 0


def cmd_check_manifests(args: argparse.Namespace) -> int:
    from .cluster.validate import check_manifests
    from .settings import get_settings

    results = check_manifests(get_settings().root / "manifests")
    for overlay, problems in results.items():
        print(f"{overlay:20} {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  - {problem}")
    return 1 if any(results.values()) else 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from . import bundle

    if args.verify:
        manifest = bundle.verify(Path(args.verify), progress=lambda line: print(line, flush=True))
        print(f"bundle ok: {args.verify} fits this checkout ({bundle.summary(manifest)})")
        return 0
    bundle.build(Path(args.out), progress=lambda line: print(line, flush=True))
    print(f"on each machine: MAAS_BUNDLE={Path(args.out).resolve()} make setup")
    return 0


def cmd_instructor(args: argparse.Namespace) -> int:
    from . import instructor, preflight, room

    if args.verb == "bundle":  # this machine's files only: no room, no platform
        return cmd_bundle(args)
    r = instructor.open_room(args.platform)
    if args.verb == "provision":
        names = room.attendee_names(args.users, args.names)
        done = instructor.provision(r, names)
        for name, objects in done.cluster_objects.items():
            print(f"{name}: applied {', '.join(objects)}")
        if done.new_logins:
            print(f"portal logins issued for {', '.join(done.new_logins)}: written to {done.sheet} (mode 600; "
                  "hand each attendee their line; it is never printed)")
        else:
            print(f"the room sheet exists ({room.sheet_path()}): no new login issued")
        copied = {n: c for n, c in done.labs_copied.items() if c}
        print(f"labs copied: {copied}" if copied else "labs: every attendee already has theirs")
        return 0
    if args.verb == "check":
        lines = preflight.check(r)
        print(instructor.table(preflight.rows(lines)))
        code = preflight.exit_code(lines)
        print("verdict: ready for the labs" if code == 0 else "verdict: something would stop a lab (FAIL lines)")
        return code
    if args.verb == "reset":
        users = instructor.room_users(r, args.all, args.user)
        if not args.yes:
            print("dry run (add --yes to do it):")
            print(instructor.plan_text(instructor.reset_plan(r, users, args.forget_usage)))
            return 0
        print(instructor.plan_text(instructor.reset(r, users, args.forget_usage)))
        print(f"reset: {', '.join(users)}" + ("" if args.forget_usage else " (usage history kept)"))
        return 0
    if args.verb == "report":
        result = instructor.report(r)
        if args.json:
            print(instructor.as_json(result))
        elif args.csv:
            print(instructor.as_csv(result["attendees"]), end="")
        else:
            print(instructor.table(result["attendees"]))
            print("\ntop consumers this month:")
            print(instructor.table(result["top_consumers"]))
        return 0
    if not args.yes:  # teardown
        print("dry run (add --yes to do it):")
        print(instructor.plan_text(instructor.teardown_plan(r)))
        return 0
    print(f"ledger exported to {instructor.teardown(r)}; the room is torn down")
    return 0


def add_instructor(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("instructor", help="the room: provision, check, reset, report, teardown, bundle")
    verbs = parser.add_subparsers(dest="verb", required=True)
    provision = verbs.add_parser("provision", help="attendees: gateway users, portal logins (the sheet), labs")
    who = provision.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", type=int, help="attendee-01 ... attendee-N")
    who.add_argument("--names", help="comma-separated attendee names")
    verbs.add_parser("check", help="preflight of the room (exit 1 when a lab would stop)")
    reset = verbs.add_parser("reset", help="revoke an attendee's keys, delete their deployments and results, "
                                           "restore their labs (dry run unless --yes)")
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--user")
    target.add_argument("--all", action="store_true")
    reset.add_argument("--yes", action="store_true", help="really do it")
    reset.add_argument("--forget-usage", action="store_true", help="also delete their ledger rows and rollups")
    report = verbs.add_parser("report", help="progress, usage and keys per attendee; top consumers")
    form = report.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true")
    form.add_argument("--json", action="store_true")
    teardown = verbs.add_parser("teardown", help="export the ledger, stop the shared models, remove the room "
                                                 "(dry run unless --yes)")
    teardown.add_argument("--yes", action="store_true", help="really do it")
    bundle = verbs.add_parser("bundle", help="the room bundle: wheels for the three venvs and the trained model, "
                                             "for `MAAS_BUNDLE=DIR make setup` without the network")
    action = bundle.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", help="a new folder to build the bundle in (about 2.5 GiB)")
    action.add_argument("--verify", metavar="DIR", help="check a bundle: every sha256, and that it fits this checkout")
    for verb in verbs.choices.values():
        verb.add_argument("--platform", default=None, help="local, kubernetes or openshift (default: PLATFORM or local)")
    parser.set_defaults(func=cmd_instructor)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="print the settings").set_defaults(func=cmd_config)
    sub.add_parser("build-model", help="build the tiny model (cached)").set_defaults(func=cmd_build_model)
    up = sub.add_parser("up", help="serve the models of the GitOps list (manifests/models.yaml, `local:`)")
    up.add_argument("--port", type=int, default=None, help="port for the list's first model (default: a free one)")
    up.add_argument("--model-list", default=None, help="another copy of the model list (default: manifests/models.yaml)")
    up.set_defaults(func=cmd_up)
    workshop = sub.add_parser("workshop", help="up, then JupyterLab on Lab 0 (make workshop)")
    workshop.set_defaults(func=cmd_workshop, port=None, platform=None)
    status = sub.add_parser("status", help="what runs, with endpoints")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    sub.add_parser("down", help="stop everything the workshop started").set_defaults(func=cmd_down)
    reset = sub.add_parser("reset-gateway", help="delete the gateway's keys, plans and ledger (new room)")
    reset.add_argument("--yes", action="store_true", help="really delete them")
    reset.set_defaults(func=cmd_reset_gateway)
    run = sub.add_parser("run-labs", help="execute solution notebooks with papermill")
    run.add_argument("--labs", default=None, help="comma-separated lab numbers, e.g. 0,1 (default: all)")
    run.add_argument("--out", default=None,
                     help="folder for executed notebooks and summary.json (default: <state dir>/run-labs)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="override a notebook parameter (a Python literal), e.g. -p SWEEP_SECONDS=4; repeatable")
    run.add_argument("--unsolved", action="store_true",
                     help="run the attendee's labs/ as handed out (TODOs unsolved): they must still run to the end")
    run.add_argument("--two-pass", action="store_true",
                     help="what CI runs: labs/ with each exercise run as handed out (checks say 'Not yet'), then solved")
    run.set_defaults(func=cmd_run_labs)
    make = sub.add_parser("make-labs", help="generate labs/ from solutions/")
    make.add_argument("--check", action="store_true", help="only report whether labs/ is stale")
    make.set_defaults(func=cmd_make_labs)
    times = sub.add_parser("lab-times", help="README's lab table and each lab's time line from a run-labs summary.json")
    times.add_argument("summary", help="summary.json written by run-labs (solutions, not --unsolved)")
    times.set_defaults(func=cmd_lab_times)
    ref = sub.add_parser("reference-outputs",
                         help="instructor guide: a run-labs folder's executed notebooks as HTML, secrets stripped")
    ref.add_argument("run", help="the folder run-labs wrote (--out): executed notebooks and summary.json")
    ref.add_argument("--out", default=None, help="folder for the pages (default: reference-outputs/, gitignored)")
    ref.set_defaults(func=cmd_reference_outputs)
    render = sub.add_parser("render-manifests", help="write manifests/ (KServe objects, validated)")
    render.add_argument("--check", action="store_true", help="only report whether manifests/ is stale")
    render.set_defaults(func=cmd_render_manifests)
    check = sub.add_parser("check-manifests", help="render every overlay and validate it offline (no cluster)")
    check.set_defaults(func=cmd_check_manifests)
    secrets_cmd = sub.add_parser("cluster-secrets", help="generate manifests/base/gateway/secrets.env and ledger-reader.env (never committed)")
    secrets_cmd.add_argument("--rotate", action="store_true", help="replace existing credentials")
    secrets_cmd.set_defaults(func=cmd_cluster_secrets)
    add_instructor(sub)
    for p in (up, status, run, sub.choices["down"]):
        p.add_argument("--platform", default=None, help="local, kubernetes or openshift (default: PLATFORM or local)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkshopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run `python -m helpers down` to stop anything left running", file=sys.stderr)
        return 130
