#!/usr/bin/env python3
"""Validates Deploy/ without a container engine (CI has none).

    python3 Deploy/check.py [--binary PATH] [--deploy DIR]

Checks:
  * compose.yaml, prometheus.yml and every YAML under k8s/ (multi-document) parse;
  * every file they reference exists: compose build context and Dockerfile, bind-mounted files,
    the Dockerfile's COPY sources (and that Dockerfile.dockerignore does not exclude them),
    kustomization resources; named volumes, networks, services, ConfigMaps and PVCs referenced
    are defined;
  * every `paratool` invocation (compose command, k8s command/args, the Dockerfile's CMD) uses a
    subcommand and --flags that `<binary> <subcommand> --help` documents, and every PARATOOL_*
    environment variable it gets is documented there (by name, or as PARATOOL_<FLAG> of a
    documented --flag); PARATOOL_KAFKA_<KEY> is the librdkafka pass-through;
  * the Dockerfile's ENTRYPOINT is paratool and `<binary> <CMD...> [--help]` exits 0;
  * paths given to the service (model, adapter store, dataset) lie on mounted volumes;
  * health checks, probes, Services, scrape targets and annotations use the metrics port of
    the process they point at; readiness is GET /healthz;
  * KEDA's topic and consumer group are the worker's, its bootstrap servers the worker's,
    maxReplicaCount <= partitions of <prefix>requests; all eight topics exist with
    cleanup.policy compact for adapters and tools, delete for the rest.

Without --binary, subcommands and flags are not checked (it says so) and environment variables
are checked against the list the service documents today (KNOWN_ENV). Exit status 1 on any error.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check.py needs PyYAML: python3 -m pip install pyyaml")

# Defaults of the service, as its --help documents them.
DEFAULT_METRICS_PORT = {"serve": 9464, "train": 9465}
DEFAULT_GROUP = {"serve": "paratool-workers", "train": "paratool-trainers"}
DEFAULT_PREFIX = "paratool."
IMAGE_HEALTHCHECK_DEFAULT_PORT = 9464  # Deploy/healthcheck.sh: ${PARATOOL_METRICS_PORT:-9464}
# Every setting is read from PARATOOL_<FLAG> (`--batch-size` -> PARATOOL_BATCH_SIZE), which the
# binary's help states once ("PARATOOL_<FLAG>") rather than per variable. With --binary, a variable
# is documented when its name is in the help text, or when the help states that rule and documents
# the flag. Without --binary, KNOWN_ENV (the flags of serve/train/topics today) decides.
GENERIC_ENV_RULE = "PARATOOL_<FLAG>"
KNOWN_FLAGS = ["brokers", "topic-prefix", "group", "model", "adapter-store", "gate", "tools", "batch-size",
               "batch-wait-ms", "exactly-once", "transactional-id", "metrics-port", "metrics-host", "threads", "worker-id",
               "config", "dataset", "retrain-every", "partitions", "replication", "max-new-tokens", "mode",
               "log-level", "stack-cache-mb", "max-prompt-tokens", "max-message-bytes", "batch-budget-ms"]
KNOWN_ENV = {"PARATOOL_" + f.upper().replace("-", "_") for f in KNOWN_FLAGS}
KAFKA_ENV_PREFIX = "PARATOOL_KAFKA_"
TOPICS = {"requests": "delete", "actions": "delete", "telemetry": "delete",
          "trajectories": "delete", "dlq": "delete", "feedback": "delete", "adapters": "compact", "tools": "compact"}
DEFAULT_STORE = "/var/lib/paratool/store"
LONG_RUNNING = ("serve", "train")


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []

    def error(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    def warn(self, where: str, msg: str) -> None:
        self.warnings.append(f"{where}: {msg}")


@dataclass
class Mount:
    target: str
    source: str          # volume / claim name or host path
    kind: str            # "volume", "bind", "pvc", "emptyDir", "configMap", ...
    read_only: bool = False


@dataclass
class Invocation:
    """One run of the paratool binary found in a deployment file."""
    where: str
    argv: list[str]                      # after "paratool"
    env: dict[str, str | None] = field(default_factory=dict)  # None = value not known
    mounts: list[Mount] = field(default_factory=list)
    # Variables that come from something shared by several commands (the image's ENV, a ConfigMap
    # in envFrom): documented by any subcommand is enough. The others must be the subcommand's.
    shared_env: set[str] = field(default_factory=set)
    sub: str = ""
    flags: list[tuple[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sub, self.flags = parse_argv(self.argv)

    def flag(self, name: str) -> str | None:
        value = None
        for f, v in self.flags:
            if f == name:
                value = v
        return value

    def has_flag(self, name: str) -> bool:
        return any(f == name for f, _ in self.flags)

    def expand(self, value: str | None) -> str | None:
        """Kubernetes-style $(VAR) expansion with the container's environment."""
        if value is None:
            return None
        def sub(m: re.Match) -> str:
            v = self.env.get(m.group(1))
            return v if v is not None else m.group(0)
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)

    def metrics_port(self) -> int | None:
        raw = self.flag("--metrics-port") or self.env.get("PARATOOL_METRICS_PORT")
        if raw is None:
            return DEFAULT_METRICS_PORT.get(self.sub)
        try:
            return int(self.expand(raw))
        except ValueError:
            return None

    def group(self) -> str | None:
        return self.flag("--group") or DEFAULT_GROUP.get(self.sub)

    def prefix(self) -> str:
        return self.flag("--topic-prefix") or DEFAULT_PREFIX

    def brokers(self) -> str | None:
        return self.expand(self.flag("--brokers") or self.env.get("PARATOOL_BROKERS"))

    def path_setting(self, flag: str, env: str | None) -> str | None:
        return self.expand(self.flag(flag) or (self.env.get(env) if env else None))


def parse_argv(argv: list[str]) -> tuple[str, list[tuple[str, str | None]]]:
    """Subcommand (first word) and the flags with the value that follows each, if any."""
    sub = ""
    flags: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        tok = str(argv[i])
        if tok.startswith("-") and len(tok) > 1:
            if not tok.startswith("--") and len(tok) > 2:
                name, eq, val = tok[:2], "=", tok[2:]   # -Xkey=value
            else:
                name, eq, val = tok.partition("=")
            if eq:
                flags.append((name, val))
            elif i + 1 < len(argv) and not str(argv[i + 1]).startswith("-"):
                flags.append((name, str(argv[i + 1])))
                i += 1
            else:
                flags.append((name, None))
        elif not sub and not flags:
            sub = tok
        i += 1
    return sub, flags


def is_paratool_exe(path: str) -> bool:
    return os.path.basename(str(path)) == "paratool"


def under(path: str, mounts: list[Mount]) -> Mount | None:
    best = None
    for m in mounts:
        t = m.target.rstrip("/") or "/"
        if path == t or path.startswith(t + "/"):
            if best is None or len(t) > len(best.target):
                best = m
    return best


def load_yaml_docs(path: Path, rep: Report) -> list:
    try:
        with path.open() as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        rep.error(f"{path}{loc}", f"YAML does not parse: {getattr(e, 'problem', e)}")
    except OSError as e:
        rep.error(str(path), f"cannot read: {e}")
    return []


# ------------------------------------------------------------------------------- Dockerfile ---

@dataclass
class Dockerfile:
    path: Path
    context: Path
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    healthcheck: list[str] | None = None


def dockerignore_rules(dockerfile: Path, context: Path) -> tuple[Path | None, list[tuple[bool, re.Pattern]]]:
    candidates = [dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"]
    for p in candidates:
        if p.is_file():
            rules = []
            for line in p.read_text().splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                negate = line.startswith("!")
                pat = line[1:].strip() if negate else line
                pat = pat.strip("/")
                rx = ""
                i = 0
                while i < len(pat):
                    if pat.startswith("**", i):
                        rx += ".*"
                        i += 2
                        if i < len(pat) and pat[i] == "/":
                            rx = rx[:-2] + "(?:.*/)?"
                            i += 1
                    elif pat[i] == "*":
                        rx += "[^/]*"
                        i += 1
                    elif pat[i] == "?":
                        rx += "[^/]"
                        i += 1
                    else:
                        rx += re.escape(pat[i])
                        i += 1
                rules.append((negate, re.compile(rx + r"(?:/.*)?\Z")))
            return p, rules
    return None, []


def ignored(rel: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    out = False
    for negate, rx in rules:
        if rx.match(rel):
            out = not negate
    return out


def parse_dockerfile(path: Path, context: Path, rep: Report) -> Dockerfile | None:
    where = str(path)
    if not path.is_file():
        rep.error(where, "Dockerfile does not exist")
        return None
    df = Dockerfile(path, context)
    lines: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if not buf:
            start = n
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append((start, buf + s))
        buf = ""
    ignore_file, rules = dockerignore_rules(path, context)
    stages: list[str] = []
    args: dict[str, str] = {}
    copy_dests: set[str] = set()
    final_user = None
    for n, line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        loc = f"{where}:{n}"
        if instr == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        elif instr == "FROM":
            m = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            stages.append((m.group(2) or str(len(stages))) if m else str(len(stages)))
            final_user = None
            df.env = {}
            df.entrypoint = df.cmd = df.healthcheck = None
        elif instr in ("COPY", "ADD"):
            toks = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            opts = [t for t in toks if t.startswith("--")]
            files = [t for t in toks if not t.startswith("--")]
            if len(files) < 2:
                rep.error(loc, f"{instr} needs a source and a destination")
                continue
            srcs, dest = files[:-1], files[-1]
            copy_dests.add(dest)
            for s in srcs:
                copy_dests.add(dest.rstrip("/") + "/" + os.path.basename(s))
            frm = [o.split("=", 1)[1] for o in opts if o.startswith("--from=")]
            if frm:
                if frm[0] not in stages and ":" not in frm[0] and "/" not in frm[0]:
                    rep.error(loc, f"COPY --from={frm[0]}: no earlier stage of that name")
                continue
            for s in srcs:
                rel = os.path.normpath(s).lstrip("./") if s not in (".", "./") else "."
                if any(c in s for c in "*?["):
                    continue   # optional wildcard sources (Package.resolved*)
                if not (context / s).exists():
                    rep.error(loc, f"{instr} source {s!r} does not exist in the build context {context}")
                elif rel != "." and ignored(rel, rules):
                    rep.error(loc, f"{instr} source {s!r} is excluded by {ignore_file}")
            if srcs == ["."] or "." in srcs:
                for needed in ("Package.swift", "Sources", "Tests"):
                    if not (context / needed).exists():
                        rep.error(loc, f"the build context {context} has no {needed}")
                    elif ignored(needed, rules):
                        rep.error(loc, f"{needed} is excluded by {ignore_file}; the build needs it")
        elif instr == "ENV":
            toks = shlex.split(rest)
            if toks and "=" not in toks[0]:
                df.env[toks[0]] = " ".join(toks[1:])
            else:
                for t in toks:
                    k, _, v = t.partition("=")
                    df.env[k] = v
        elif instr in ("ENTRYPOINT", "CMD"):
            if not rest.startswith("["):
                rep.error(loc, f"{instr} must use the exec (JSON) form so SIGTERM reaches paratool")
                continue
            try:
                val = json.loads(rest)
            except json.JSONDecodeError as e:
                rep.error(loc, f"{instr} is not valid JSON: {e}")
                continue
            if instr == "ENTRYPOINT":
                df.entrypoint = val
            else:
                df.cmd = val
        elif instr == "USER":
            final_user = rest
        elif instr == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(.*)$", rest)
            if m and m.group(1).startswith("["):
                df.healthcheck = json.loads(m.group(1))
            elif m:
                df.healthcheck = shlex.split(m.group(1))
    df.user = final_user
    if df.entrypoint is None or len(df.entrypoint) != 1 or not is_paratool_exe(df.entrypoint[0]):
        rep.error(where, f'ENTRYPOINT must be ["paratool"] (got {df.entrypoint})')
    if df.cmd is None:
        rep.error(where, "no CMD: give a default such as [\"serve\", \"--help\"]")
    if not final_user or final_user.split(":")[0] in ("root", "0"):
        rep.error(where, f"the final stage must run as a non-root USER (got {final_user})")
    if df.healthcheck:
        exe = df.healthcheck[0]
        if exe.startswith("/") and exe not in copy_dests and not exe.startswith(("/bin/", "/usr/bin/")):
            rep.error(where, f"HEALTHCHECK runs {exe}, which no COPY puts there")
    return df


# ---------------------------------------------------------------------------------- compose ---

def compose_env(svc: dict) -> dict[str, str | None]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        out: dict[str, str | None] = {}
        for item in env:
            k, eq, v = str(item).partition("=")
            out[k] = v if eq else None
        return out
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def check_compose(deploy: Path, rep: Report, invocations: list[Invocation],
                  dockerfiles: dict[Path, Dockerfile]) -> None:
    path = deploy / "compose.yaml"
    docs = load_yaml_docs(path, rep)
    if not docs:
        if path.exists():
            return
        rep.error(str(path), "missing")
        return
    doc = docs[0]
    services = doc.get("services") or {}
    if not services:
        rep.error(str(path), "no services")
        return
    volumes_decl = set((doc.get("volumes") or {}).keys())
    networks_decl = set((doc.get("networks") or {}).keys()) | {"default"}
    paratool_images: set[str] = set()
    svc_df: dict[str, Dockerfile] = {}
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        where = f"{path}: services.{name}.build"
        ctx_s = build if isinstance(build, str) else build.get("context", ".")
        ctx = (deploy / ctx_s).resolve()
        if not ctx.is_dir():
            rep.error(where, f"build context {ctx_s!r} ({ctx}) is not a directory")
            continue
        df_s = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        df_path = (ctx / df_s).resolve()
        if not df_path.is_file():
            rep.error(where, f"dockerfile {df_s!r} does not exist in the context ({df_path})")
            continue
        if df_path not in dockerfiles:
            df = parse_dockerfile(df_path, ctx, rep)
            if df:
                dockerfiles[df_path] = df
        if df_path in dockerfiles:
            svc_df[name] = dockerfiles[df_path]
            if svc.get("image"):
                paratool_images.add(svc["image"])
    scraped: dict[str, list[tuple[str, int]]] = {}  # filled from prometheus.yml
    prometheus_cfg: Path | None = None
    metrics_of: dict[str, Invocation] = {}
    for name, svc in services.items():
        where = f"{path}: services.{name}"
        mounts: list[Mount] = []
        for i, v in enumerate(svc.get("volumes") or []):
            if isinstance(v, str):
                parts = v.split(":")
                src, tgt = parts[0], parts[1] if len(parts) > 1 else parts[0]
                ro = len(parts) > 2 and "ro" in parts[2].split(",")
                kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            else:
                src, tgt = v.get("source", ""), v.get("target", "")
                ro = bool(v.get("read_only"))
                kind = v.get("type", "volume")
            mounts.append(Mount(tgt, src, kind, ro))
            if kind == "bind":
                if "$" in src:
                    rep.notes.append(f"{where}.volumes[{i}]: bind source {src!r} is set by the user; not checked")
                elif not (deploy / src).exists():
                    rep.error(f"{where}.volumes[{i}]", f"bind-mounted {src!r} does not exist ({(deploy / src).resolve()})")
                elif tgt.endswith("prometheus.yml"):
                    prometheus_cfg = (deploy / src).resolve()
            elif kind == "volume" and src and src not in volumes_decl:
                rep.error(f"{where}.volumes[{i}]", f"named volume {src!r} is not declared under top-level volumes")
        nets = svc.get("networks") or []
        for n in (nets.keys() if isinstance(nets, dict) else nets):
            if n not in networks_decl:
                rep.error(f"{where}.networks", f"network {n!r} is not declared under top-level networks")
        deps = svc.get("depends_on") or []
        for d in (deps.keys() if isinstance(deps, dict) else deps):
            if d not in services:
                rep.error(f"{where}.depends_on", f"no service named {d!r}")
        for ef in ([svc["env_file"]] if isinstance(svc.get("env_file"), str) else svc.get("env_file") or []):
            efp = ef if isinstance(ef, str) else ef.get("path")
            if not (deploy / efp).exists():
                rep.error(f"{where}.env_file", f"{efp!r} does not exist")
        # Is this the paratool image, and what does it run?
        df = svc_df.get(name)
        if df is None and svc.get("image") in paratool_images:
            df = next(iter(svc_df.values()), None)
        if df is None:
            continue
        ep = svc.get("entrypoint")
        if ep is not None:
            ep = shlex.split(ep) if isinstance(ep, str) else ep
            if not (len(ep) == 1 and is_paratool_exe(ep[0])):
                continue  # runs something else than paratool
        cmd = svc.get("command")
        if cmd is None:
            argv = list(df.cmd or [])
        else:
            argv = shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]
        own = compose_env(svc)
        env = dict(df.env)
        env.update(own)
        inv = Invocation(f"{where}.command", argv, env, mounts, shared_env=set(df.env) - set(own))
        invocations.append(inv)
        if inv.sub in LONG_RUNNING:
            metrics_of[name] = inv
            hc = svc.get("healthcheck")
            if not (hc and (hc.get("disable") or hc.get("test"))) and df.healthcheck:
                probe_port = IMAGE_HEALTHCHECK_DEFAULT_PORT
                raw = env.get("PARATOOL_METRICS_PORT")
                if raw is not None:
                    try:
                        probe_port = int(raw)
                    except ValueError:
                        rep.error(where, f"PARATOOL_METRICS_PORT={raw!r} is not a port")
                if inv.metrics_port() != probe_port:
                    rep.error(where, f"the image's HEALTHCHECK probes port {probe_port} (PARATOOL_METRICS_PORT or 9464) "
                                     f"but `{inv.sub}` serves /healthz on {inv.metrics_port()}: set PARATOOL_METRICS_PORT "
                                     f"instead of --metrics-port, or override healthcheck")
    # Prometheus scrape targets.
    if prometheus_cfg is None:
        rep.error(str(path), "no service bind-mounts a prometheus.yml")
        return
    pdocs = load_yaml_docs(prometheus_cfg, rep)
    if not pdocs:
        return
    for i, job in enumerate(pdocs[0].get("scrape_configs") or []):
        jwhere = f"{prometheus_cfg}: scrape_configs[{i}] ({job.get('job_name')})"
        if job.get("metrics_path", "/metrics") != "/metrics":
            rep.error(jwhere, f"metrics_path {job.get('metrics_path')!r}: the service serves /metrics")
        targets: list[tuple[str, int]] = []
        for sc in job.get("static_configs") or []:
            for t in sc.get("targets") or []:
                host, _, port = str(t).rpartition(":")
                targets.append((host, int(port)))
        for sd in job.get("dns_sd_configs") or []:
            for n in sd.get("names") or []:
                targets.append((n, int(sd.get("port", 0))))
        for host, port in targets:
            if host in ("localhost", "127.0.0.1"):
                continue
            if host not in services:
                rep.error(jwhere, f"target {host}:{port}: no compose service named {host!r}")
            elif host in metrics_of and metrics_of[host].metrics_port() != port:
                rep.error(jwhere, f"target {host}:{port}: {host} serves /metrics on {metrics_of[host].metrics_port()}")
            scraped.setdefault(host, []).append((job.get("job_name"), port))
    for name in metrics_of:
        if name not in scraped:
            rep.error(f"{prometheus_cfg}", f"compose service {name!r} ({metrics_of[name].sub}) is not scraped")


# --------------------------------------------------------------------------------------- k8s ---

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def pod_spec(obj: dict) -> dict | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return ((spec.get("template") or {}).get("spec")) if obj.get("kind") in POD_KINDS | {"CronJob"} else None


def check_k8s(deploy: Path, rep: Report, invocations: list[Invocation]) -> None:
    root = deploy / "k8s"
    if not root.is_dir():
        rep.error(str(root), "missing")
        return
    objs: list[tuple[Path, int, dict]] = []
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
    for f in files:
        for i, d in enumerate(load_yaml_docs(f, rep)):
            if not isinstance(d, dict):
                rep.error(f"{f}[{i}]", "not a mapping")
                continue
            objs.append((f, i, d))
    by_kind: dict[str, dict[str, tuple[str, dict]]] = {}
    kustomization = None
    for f, i, d in objs:
        kind = d.get("kind")
        where = f"{f}[{i}]"
        if kind == "Kustomization":
            kustomization = (f, d)
            continue
        name = (d.get("metadata") or {}).get("name")
        if not d.get("apiVersion") or not kind or not name:
            rep.error(where, "needs apiVersion, kind and metadata.name")
            continue
        if (d.get("metadata") or {}).get("namespace"):
            rep.error(where, f"{kind}/{name} sets metadata.namespace: the manifests are namespace-less")
        if name in by_kind.setdefault(kind, {}):
            rep.error(where, f"{kind}/{name} defined twice (also {by_kind[kind][name][0]})")
        by_kind[kind][name] = (where, d)
    image_map: dict[str, str] = {}
    if kustomization:
        kf, kd = kustomization
        listed = set()
        for r in kd.get("resources") or []:
            rp = (kf.parent / r).resolve()
            listed.add(rp)
            if not rp.exists():
                rep.error(str(kf), f"resource {r!r} does not exist")
        for f in files:
            if f.parent == kf.parent and f != kf and f.resolve() not in listed:
                rep.error(str(kf), f"{f.name} is not listed under resources (kubectl apply -k would skip it)")
        for im in kd.get("images") or []:
            image_map[im["name"]] = f"{im.get('newName', im['name'])}:{im.get('newTag', 'latest')}"
    configmaps = {n: (d.get("data") or {}) for n, (_, d) in by_kind.get("ConfigMap", {}).items()}
    if kustomization:
        # configMapGenerator entries are ConfigMaps too: their keys are the files' names (or KEY= of KEY=path).
        kf, kd = kustomization
        for g in kd.get("configMapGenerator") or []:
            data = {}
            for entry in g.get("files") or []:
                key, _, path = str(entry).rpartition("=")
                path = path or key
                if not (kf.parent / path).exists():
                    rep.error(str(kf), f"configMapGenerator {g.get('name')!r}: file {path!r} does not exist")
                data[key or Path(path).name] = ""
            for literal in g.get("literals") or []:
                key, _, value = str(literal).partition("=")
                data[key] = value
            configmaps[g.get("name")] = data
    pvcs = {n: d for n, (_, d) in by_kind.get("PersistentVolumeClaim", {}).items()}
    # Pod templates.
    workers: dict[str, Invocation] = {}           # Deployment name -> serve invocation
    pods: list[tuple[str, dict, dict, list]] = []  # (where, labels, spec, [(container, inv)])
    for kind in sorted(POD_KINDS | {"CronJob"}):
        for name, (where, d) in by_kind.get(kind, {}).items():
            spec = pod_spec(d)
            if spec is None:
                rep.error(where, f"{kind}/{name} has no pod template")
                continue
            tmpl = (d.get("spec") or {}).get("template") or {}
            labels = ((tmpl.get("metadata") or {}).get("labels")) or {}
            annotations = ((tmpl.get("metadata") or {}).get("annotations")) or {}
            vols = {v.get("name"): v for v in spec.get("volumes") or []}
            for vn, v in vols.items():
                if "persistentVolumeClaim" in v:
                    claim = v["persistentVolumeClaim"].get("claimName")
                    if claim not in pvcs:
                        rep.error(where, f"volume {vn!r}: no PersistentVolumeClaim named {claim!r}")
                if "configMap" in v and v["configMap"].get("name") not in configmaps and not v["configMap"].get("optional"):
                    rep.error(where, f"volume {vn!r}: no ConfigMap named {v['configMap'].get('name')!r}")
            entries = []
            all_containers = [("initContainers", c) for c in spec.get("initContainers") or []] + \
                             [("containers", c) for c in spec.get("containers") or []]
            for section, c in all_containers:
                cwhere = f"{where}: {kind}/{name} {section}[{c.get('name')}]"
                mounts = []
                for vm in c.get("volumeMounts") or []:
                    v = vols.get(vm.get("name"))
                    if v is None:
                        rep.error(cwhere, f"volumeMount {vm.get('name')!r} has no volume of that name")
                        continue
                    vkind = next((k for k in v if k != "name"), "?")
                    src = (v.get("persistentVolumeClaim") or {}).get("claimName", vm.get("name"))
                    mounts.append(Mount(vm.get("mountPath", ""), src, vkind, bool(vm.get("readOnly"))))
                image = str(c.get("image", ""))
                repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
                if not (repo == "paratool" or repo.endswith("/paratool")):
                    continue
                cmd = c.get("command")
                if cmd and not (len(cmd) >= 1 and is_paratool_exe(cmd[0])):
                    continue   # a shell or another program in the paratool image
                argv = [str(a) for a in (cmd[1:] if cmd else [])] + [str(a) for a in c.get("args") or []]
                env: dict[str, str | None] = {}
                shared: set[str] = set()
                for ef in c.get("envFrom") or []:
                    if "configMapRef" in ef:
                        cm = ef["configMapRef"].get("name")
                        if cm in configmaps:
                            env.update({k: str(v) for k, v in configmaps[cm].items()})
                            shared |= set(configmaps[cm])
                        elif not ef["configMapRef"].get("optional"):
                            rep.error(cwhere, f"envFrom: no ConfigMap named {cm!r}")
                for e in c.get("env") or []:
                    env[e.get("name")] = str(e["value"]) if "value" in e else None
                    shared.discard(e.get("name"))
                inv = Invocation(cwhere, argv, env, mounts, shared_env=shared)
                for a in argv:
                    for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
                        if var not in env:
                            rep.error(cwhere, f"argument {a!r} refers to $({var}), which the container's env does not define")
                invocations.append(inv)
                entries.append((c, inv))
                if section == "containers" and inv.sub in LONG_RUNNING:
                    check_probes(cwhere, c, inv, annotations, rep)
                    if inv.sub == "serve":
                        if kind == "Deployment":
                            workers[name] = inv
                        grace = spec.get("terminationGracePeriodSeconds", 30)
                        if int(grace) < 10:
                            rep.error(where, f"terminationGracePeriodSeconds {grace} is too short to finish one batch (>= 10)")
                        store = inv.path_setting("--adapter-store", "PARATOOL_ADAPTER_STORE") or DEFAULT_STORE
                        m = under(store, mounts)
                        if m and m.kind == "persistentVolumeClaim":
                            modes = ((pvcs.get(m.source) or {}).get("spec") or {}).get("accessModes") or []
                            if "ReadWriteMany" not in modes:
                                rep.error(cwhere, f"adapter store claim {m.source!r} must be ReadWriteMany (workers on many nodes), has {modes}")
                    if inv.sub == "train":
                        ds = inv.path_setting("--dataset", None)
                        m = under(ds, mounts) if ds else None
                        if ds and (m is None or m.kind != "persistentVolumeClaim"):
                            rep.error(cwhere, f"--dataset {ds} is not on a PersistentVolumeClaim (it would be lost with the pod)")
            pods.append((where, labels, spec, entries))
    # Services: selector -> pods, targetPort -> metrics port.
    for name, (where, d) in by_kind.get("Service", {}).items():
        sel = (d.get("spec") or {}).get("selector") or {}
        matched = [p for p in pods if sel and all(p[1].get(k) == v for k, v in sel.items())]
        if not matched:
            rep.error(where, f"Service/{name}: selector {sel} matches no pod template")
            continue
        for port in (d.get("spec") or {}).get("ports") or []:
            tp = port.get("targetPort", port.get("port"))
            for pwhere, _, spec, entries in matched:
                for c, inv in entries:
                    if inv.sub not in LONG_RUNNING:
                        continue
                    resolved = resolve_port(c, tp)
                    if resolved != inv.metrics_port():
                        rep.error(where, f"Service/{name} port {port.get('name', tp)} targets {tp} = {resolved}, "
                                         f"but {inv.sub} serves /metrics on {inv.metrics_port()}")
    # Topics.
    topics: dict[str, tuple[str, dict]] = {}
    for name, (where, d) in by_kind.get("KafkaTopic", {}).items():
        spec = d.get("spec") or {}
        tname = spec.get("topicName") or name
        topics[tname] = (where, spec)
        if not ((d.get("metadata") or {}).get("labels") or {}).get("strimzi.io/cluster"):
            rep.error(where, f"KafkaTopic/{name} has no strimzi.io/cluster label")
        if not isinstance(spec.get("partitions"), int) or spec["partitions"] < 1:
            rep.error(where, f"KafkaTopic/{name}: partitions must be a positive integer")
    prefixes = {inv.prefix() for inv in workers.values()} or {DEFAULT_PREFIX}
    if topics:
        for prefix in prefixes:
            for t, policy in TOPICS.items():
                full = prefix + t
                if full not in topics:
                    rep.error(str(root), f"no KafkaTopic for {full}")
                    continue
                where, spec = topics[full]
                got = str((spec.get("config") or {}).get("cleanup.policy", "delete"))
                if got != policy:
                    rep.error(where, f"{full}: cleanup.policy is {got!r}, must be {policy!r}")
    else:
        rep.warn(str(root), "no KafkaTopic resources: topics must come from `paratool topics`")
    # KEDA.
    for name, (where, d) in by_kind.get("ScaledObject", {}).items():
        spec = d.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        target = ref.get("name")
        if ref.get("kind", "Deployment") != "Deployment" or target not in by_kind.get("Deployment", {}):
            rep.error(where, f"ScaledObject/{name}: scaleTargetRef {ref} is not a Deployment defined here")
            continue
        inv = workers.get(target)
        if inv is None:
            rep.error(where, f"ScaledObject/{name}: Deployment/{target} does not run `paratool serve`")
            continue
        kafka = [t for t in spec.get("triggers") or [] if t.get("type") == "kafka"]
        if not kafka:
            rep.error(where, f"ScaledObject/{name}: no kafka trigger")
        for t in kafka:
            md = t.get("metadata") or {}
            want_topic = inv.prefix() + "requests"
            if md.get("topic") != want_topic:
                rep.error(where, f"ScaledObject/{name}: trigger topic {md.get('topic')!r}, the worker consumes {want_topic!r}")
            if md.get("consumerGroup") != inv.group():
                rep.error(where, f"ScaledObject/{name}: consumerGroup {md.get('consumerGroup')!r}, the worker's group is {inv.group()!r}")
            b = inv.brokers()
            if b and "$(" not in b and md.get("bootstrapServers") != b:
                rep.error(where, f"ScaledObject/{name}: bootstrapServers {md.get('bootstrapServers')!r}, the worker uses {b!r}")
            if str(md.get("allowIdleConsumers", "false")).lower() == "true":
                rep.error(where, f"ScaledObject/{name}: allowIdleConsumers would scale past the partitions")
        mx = spec.get("maxReplicaCount", 100)
        mn = spec.get("minReplicaCount", 0)
        if mn > mx:
            rep.error(where, f"ScaledObject/{name}: minReplicaCount {mn} > maxReplicaCount {mx}")
        req = topics.get(inv.prefix() + "requests")
        if req is not None:
            parts = (req[1] or {}).get("partitions")
            if isinstance(parts, int) and mx > parts:
                rep.error(where, f"ScaledObject/{name}: maxReplicaCount {mx} > {parts} partitions of "
                                 f"{inv.prefix()}requests (extra workers would sit idle)")
    if workers and not by_kind.get("ScaledObject"):
        rep.error(str(root), "no KEDA ScaledObject for the workers")


def resolve_port(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_probes(where: str, c: dict, inv: Invocation, annotations: dict, rep: Report) -> None:
    mport = inv.metrics_port()
    for p in c.get("ports") or []:
        if p.get("name") == "metrics" and p.get("containerPort") != mport:
            rep.error(where, f"containerPort 'metrics' is {p.get('containerPort')}, {inv.sub} serves on {mport}")
    ready = c.get("readinessProbe")
    if not ready or not ready.get("httpGet"):
        rep.error(where, f"`{inv.sub}` needs a readinessProbe httpGet /healthz on the metrics port")
    elif ready["httpGet"].get("path") != "/healthz":
        rep.error(where, f"readinessProbe path {ready['httpGet'].get('path')!r}, must be /healthz")
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        pr = c.get(kind)
        if pr and pr.get("httpGet"):
            port = pr["httpGet"].get("port")
            resolved = resolve_port(c, port)
            if resolved is None:
                rep.error(where, f"{kind} port {port!r} is not a containerPort of the container")
            elif resolved != mport:
                rep.error(where, f"{kind} probes port {resolved} ({port}), but {inv.sub} serves /healthz on {mport}")
            if pr["httpGet"].get("path") not in ("/healthz", "/metrics"):
                rep.error(where, f"{kind} path {pr['httpGet'].get('path')!r}: the service serves /healthz and /metrics")
    ann = annotations.get("prometheus.io/port")
    if ann is not None and str(ann) != str(mport):
        rep.error(where, f"annotation prometheus.io/port={ann}, {inv.sub} serves /metrics on {mport}")


# ---------------------------------------------------------------------------- paths, binary ---

def check_paths(inv: Invocation, rep: Report) -> None:
    """Paths the service reads or writes lie on a mounted volume (not the image's filesystem)."""
    if inv.sub not in LONG_RUNNING:
        return
    settings = [("model", inv.path_setting("--model", "PARATOOL_MODEL")),
                ("adapter store", inv.path_setting("--adapter-store", "PARATOOL_ADAPTER_STORE"))]
    if inv.sub == "train":
        settings.append(("dataset", inv.path_setting("--dataset", None)))
    for what, p in settings:
        if not p or "$" in p:
            continue
        if not p.startswith("/"):
            rep.error(inv.where, f"{what} path {p!r} is relative; use an absolute path on a volume")
        elif under(p, inv.mounts) is None:
            rep.error(inv.where, f"{what} path {p} is on no mounted volume ({[m.target for m in inv.mounts]})")


class Binary:
    def __init__(self, path: str) -> None:
        self.path = path
        self.cache: dict[tuple[str, ...], tuple[int, str]] = {}

    def run(self, *args: str) -> tuple[int, str]:
        if args not in self.cache:
            try:
                p = subprocess.run([self.path, *args], capture_output=True, text=True, timeout=120,
                                   stdin=subprocess.DEVNULL)
                self.cache[args] = (p.returncode, p.stdout + p.stderr)
            except (OSError, subprocess.TimeoutExpired) as e:
                self.cache[args] = (-1, str(e))
        return self.cache[args]


def word_in(text: str, word: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9_-])" + re.escape(word) + r"(?![A-Za-z0-9_-])", text) is not None


def env_documented(var: str, help_text: str, root_help: str = "") -> bool:
    """`var` is named by the help, or the help states PARATOOL_<FLAG> and documents its flag."""
    if word_in(help_text, var) or word_in(root_help, var):
        return True
    flag = "--" + var[len("PARATOOL_"):].lower().replace("_", "-")
    return GENERIC_ENV_RULE in help_text + root_help and word_in(help_text, flag)


def own_help(binary: Binary, sub: str) -> bool:
    """The subcommand is listed by `paratool --help` and has a help text of its own (ArgumentParser
    prints the root help, status 0, for `paratool <unknown> --help`)."""
    rc, root_help = binary.run("--help")
    rc_sub, help_text = binary.run(sub, "--help")
    listed = re.search(r"(?m)^\s+" + re.escape(sub) + r"\b", root_help) is not None
    return listed and rc_sub == 0 and help_text != root_help


def check_invocation(inv: Invocation, binary: Binary | None, rep: Report, all_help: list[str] = ()) -> None:
    if not inv.sub:
        rep.error(inv.where, f"no paratool subcommand in {inv.argv}")
        return
    kafka_env = [k for k in inv.env if k.startswith(KAFKA_ENV_PREFIX)]
    for k in kafka_env:
        if not re.fullmatch(r"[A-Z0-9_]+", k[len(KAFKA_ENV_PREFIX):]):
            rep.error(inv.where, f"{k}: librdkafka keys map from upper-case letters, digits and _ only")
    for f, v in inv.flags:
        if f == "-X" and (v is None or "=" not in v):
            rep.error(inv.where, f"-X needs key=value (got {v!r})")
    plain_env = [k for k in inv.env if k.startswith("PARATOOL_") and not k.startswith(KAFKA_ENV_PREFIX)]
    if binary is None:
        for k in plain_env:
            if k not in KNOWN_ENV:
                rep.error(inv.where, f"environment variable {k} is not one the service documents ({sorted(KNOWN_ENV)})")
        return
    rc, root_help = binary.run("--help")
    rc_sub, help_text = binary.run(inv.sub, "--help")
    if rc != 0:
        rep.error(inv.where, f"`{binary.path} --help` exited {rc}")
    if not re.search(r"(?m)^\s+" + re.escape(inv.sub) + r"\b", root_help):
        rep.error(inv.where, f"subcommand {inv.sub!r} is not listed by `paratool --help`")
        return
    if rc_sub != 0:
        rep.error(inv.where, f"`paratool {inv.sub} --help` exited {rc_sub}: {help_text.strip()[:200]}")
        return
    if help_text == root_help:
        rep.error(inv.where, f"`paratool {inv.sub} --help` prints the root help: no such subcommand")
        return
    for f, _ in inv.flags:
        if not word_in(help_text, f):
            rep.error(inv.where, f"`paratool {inv.sub}` does not document the flag {f} (not in `paratool {inv.sub} --help`)")
    for k in plain_env:
        if env_documented(k, help_text, root_help):
            continue
        if k in inv.shared_env:
            if not any(env_documented(k, h, root_help) for h in all_help):
                rep.error(inv.where, f"environment variable {k} (shared: image ENV or ConfigMap) is documented by "
                                     f"no subcommand's --help")
        else:
            rep.error(inv.where, f"environment variable {k} is not documented by `paratool {inv.sub} --help` or `paratool --help`")
    if kafka_env and KAFKA_ENV_PREFIX not in help_text and KAFKA_ENV_PREFIX not in root_help:
        rep.error(inv.where, f"{kafka_env[0]}: the {KAFKA_ENV_PREFIX}* pass-through is not documented by `paratool {inv.sub} --help`")


def check_dockerfile_binary(df: Dockerfile, binary: Binary | None, rep: Report, all_help: list[str] = ()) -> None:
    plain = [k for k in df.env if k.startswith("PARATOOL_") and not k.startswith(KAFKA_ENV_PREFIX)]
    if binary is None:
        for k in plain:
            if k not in KNOWN_ENV:
                rep.error(str(df.path), f"ENV {k} is not one the service documents ({sorted(KNOWN_ENV)})")
        return
    cmd = [str(c) for c in (df.cmd or [])]
    args = cmd if "--help" in cmd else cmd + ["--help"]
    rc, out = binary.run(*args)
    sub, _ = parse_argv(cmd)
    if rc != 0:
        rep.error(str(df.path), f"ENTRYPOINT+CMD: `paratool {' '.join(args)}` exited {rc}: {out.strip()[:300]}")
    elif not out.strip():
        rep.error(str(df.path), f"ENTRYPOINT+CMD: `paratool {' '.join(args)}` printed nothing")
    elif sub and not own_help(binary, sub):
        # ArgumentParser answers `paratool <unknown> --help` with the root help and status 0.
        rep.error(str(df.path), f"ENTRYPOINT+CMD: `paratool {' '.join(args)}` printed the root help: "
                                f"the binary has no subcommand {sub!r}")
    root_help = binary.run("--help")[1]
    for k in plain:
        if not any(env_documented(k, h, root_help) for h in all_help):
            rep.error(str(df.path), f"ENV {k} is documented by no subcommand's --help")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", help="the built paratool binary (e.g. .build/release/paratool)")
    ap.add_argument("--deploy", default=str(Path(__file__).resolve().parent), help="the Deploy directory")
    args = ap.parse_args(argv)
    deploy = Path(args.deploy).resolve()
    rep = Report()
    binary = None
    if args.binary:
        if not os.access(args.binary, os.X_OK):
            print(f"ERROR --binary {args.binary}: not an executable file")
            return 1
        binary = Binary(args.binary)
    invocations: list[Invocation] = []
    dockerfiles: dict[Path, Dockerfile] = {}
    check_compose(deploy, rep, invocations, dockerfiles)
    main_df = (deploy / "Dockerfile").resolve()
    if main_df not in dockerfiles:
        df = parse_dockerfile(main_df, deploy.parent, rep)
        if df:
            dockerfiles[main_df] = df
    check_k8s(deploy, rep, invocations)
    # Every help text of the subcommands in use, for variables shared between commands.
    all_help: list[str] = []
    if binary is not None:
        all_help = [binary.run(s, "--help")[1] for s in sorted({i.sub for i in invocations if i.sub})]
    for df in dockerfiles.values():
        check_dockerfile_binary(df, binary, rep, all_help)
    for inv in invocations:
        check_invocation(inv, binary, rep, all_help)
        check_paths(inv, rep)
    if not any(i.sub == "serve" for i in invocations):
        rep.error(str(deploy), "no `paratool serve` found in compose.yaml or k8s/")
    for n in rep.notes:
        print(f"note  {n}")
    for w in rep.warnings:
        print(f"WARN  {w}")
    for e in rep.errors:
        print(f"ERROR {e}")
    subs = sorted({i.sub for i in invocations})
    if binary is None:
        print("SKIPPED: --binary not given; subcommands, flags and the Dockerfile's CMD were not run "
              "through `paratool <subcommand> --help` (environment variables checked against KNOWN_ENV)")
    print(f"{'FAILED' if rep.errors else 'OK'}: {len(invocations)} paratool invocations "
          f"({', '.join(subs)}), {len(dockerfiles)} Dockerfile(s); {len(rep.errors)} error(s), "
          f"{len(rep.warnings)} warning(s)")
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
