#!/usr/bin/env python3
"""Self-test of Deploy/check.py:  python3 Deploy/check_test.py

The real Deploy/ files must pass; copies with one deliberate mistake each must fail with a message
that names the mistake. A fake `paratool` (written to a temporary directory) prints
ArgumentParser-style help for the planned interface, so this runs without building the package.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check  # noqa: E402

FAKE = r'''#!/usr/bin/env python3
import sys
KAFKA = "-X <key=value>  librdkafka property (repeatable); env PARATOOL_KAFKA_<KEY>"
SUBS = {
 "serve": ["--brokers <b> (env: PARATOOL_BROKERS)", "--topic-prefix <p>", "--group <g>",
           "--model <m> (env: PARATOOL_MODEL)", "--adapter-store <d>",
           "--gate <d>", "--tools <f>", "--batch-size <n>", "--batch-wait-ms <ms>", "--exactly-once",
           "--transactional-id <id>", "--metrics-port <p>", "--metrics-host <a>",
           "--threads <n>", "--worker-id <id>", KAFKA, "--config <file>",
           "Every setting is also read from the environment as PARATOOL_<FLAG> (e.g. PARATOOL_BATCH_SIZE)."],
 "train": ["--brokers <b> (env: PARATOOL_BROKERS)", "--adapter-store <d> (env: PARATOOL_ADAPTER_STORE)",
           "--model <m> (env: PARATOOL_MODEL)", "--dataset <d>", "--group <g>", "--retrain-every <k>",
           "--metrics-port <p> (env: PARATOOL_METRICS_PORT)", "--metrics-host <a> (env: PARATOOL_METRICS_HOST)",
           "--tools <f>", KAFKA, "--config <file>"],
 "topics": ["--brokers <b> (env: PARATOOL_BROKERS)", "--partitions <n>", "--replication <r>",
            "--topic-prefix <p>", "--publish-tools <f>", KAFKA],
 "send": ["--brokers <b>", "--query <q>", "--tools <t>", "--json"],
}
a = sys.argv[1:]
if not a or a[0] == "--help":
    print("USAGE: paratool <subcommand>\n\nSUBCOMMANDS:")
    for s in SUBS: print("  " + s)
    sys.exit(0)
if a[0] not in SUBS:
    if "--help" in a:   # like ArgumentParser: the root help, status 0
        print("USAGE: paratool <subcommand>\n\nSUBCOMMANDS:")
        for s in SUBS: print("  " + s)
        sys.exit(0)
    print(f"Error: Unexpected argument '{a[0]}'", file=sys.stderr); sys.exit(64)
if "--bogus" in a:
    print("Error: Unknown option '--bogus'", file=sys.stderr); sys.exit(3)
print(f"USAGE: paratool {a[0]} [<options>]\n\nOPTIONS:")
for f in SUBS[a[0]]: print("  " + f)
print("  -h, --help  Show help information.")
'''


class CheckerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(prefix="paratool-check-test-"))
        cls.fake = cls.tmp / "bin" / "paratool"
        cls.fake.parent.mkdir()
        cls.fake.write_text(FAKE)
        cls.fake.chmod(0o755)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def repo(self, edits: dict[str, list[tuple[str, str]]] | None = None,
             delete: tuple[str, ...] = ()) -> Path:
        """A copy of Deploy/ inside a minimal repository, with text replacements applied."""
        root = Path(tempfile.mkdtemp(dir=self.tmp))
        shutil.copytree(HERE, root / "Deploy", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "Package.swift").write_text("// swift-tools-version: 6.0\n")
        (root / "Sources").mkdir()
        (root / "Tests").mkdir()
        for rel, subs in (edits or {}).items():
            p = root / "Deploy" / rel
            text = p.read_text()
            for old, new in subs:
                self.assertIn(old, text, f"test setup: {old!r} not in {rel}")
                text = text.replace(old, new, 1)
            p.write_text(text)
        for rel in delete:
            (root / "Deploy" / rel).unlink()
        return root / "Deploy"

    def run_check(self, deploy: Path, binary: bool = True) -> tuple[int, str]:
        out = io.StringIO()
        args = ["--deploy", str(deploy)] + (["--binary", str(self.fake)] if binary else [])
        with contextlib.redirect_stdout(out):
            rc = check.main(args)
        return rc, out.getvalue()

    def assertFails(self, deploy: Path, *needles: str, binary: bool = True) -> None:
        rc, out = self.run_check(deploy, binary)
        self.assertEqual(rc, 1, out)
        for n in needles:
            self.assertIn(n, out)

    # --- the real files --------------------------------------------------------------------
    def test_real_files_pass_with_binary(self) -> None:
        rc, out = self.run_check(HERE)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("SKIPPED", out)

    def test_real_files_pass_without_binary_and_say_so(self) -> None:
        rc, out = self.run_check(HERE, binary=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("SKIPPED: --binary not given", out)

    # --- flags, subcommands, environment ---------------------------------------------------
    def test_unknown_flag_in_compose_fails(self) -> None:
        d = self.repo({"compose.yaml": [('"--batch-size", "8"', '"--batch-size", "8", "--no-such-flag"')]})
        self.assertFails(d, "services.worker.command", "does not document the flag --no-such-flag")

    def test_unknown_flag_in_k8s_fails(self) -> None:
        d = self.repo({"k8s/trainer.yaml": [("- --retrain-every", "- --retrain-evry")]})
        self.assertFails(d, "trainer.yaml", "--retrain-evry")

    def test_unknown_subcommand_fails(self) -> None:
        d = self.repo({"compose.yaml": [('command: ["topics",', 'command: ["topic",')]})
        self.assertFails(d, "subcommand 'topic' is not listed")

    def test_dockerfile_cmd_runs_through_binary(self) -> None:
        d = self.repo({"Dockerfile": [('CMD ["serve", "--help"]', 'CMD ["serv", "--help"]')]})
        self.assertFails(d, "ENTRYPOINT+CMD: `paratool serv --help` printed the root help")

    def test_dockerfile_cmd_failing_fails(self) -> None:
        d = self.repo({"Dockerfile": [('CMD ["serve", "--help"]', 'CMD ["serve", "--bogus"]')]})
        self.assertFails(d, "ENTRYPOINT+CMD: `paratool serve --bogus --help` exited 3")

    def test_undocumented_env_fails(self) -> None:
        d = self.repo({"compose.yaml": [("PARATOOL_BROKERS: kafka:9092", "PARATOOL_BROKER: kafka:9092")]})
        self.assertFails(d, "PARATOOL_BROKER is not documented")

    def test_env_of_a_documented_flag_passes(self) -> None:
        # serve's help states PARATOOL_<FLAG> once; PARATOOL_GROUP is the env of --group.
        d = self.repo({"compose.yaml": [('"--group", "paratool-workers",', ''),
                                        ("PARATOOL_BROKERS: kafka:9092", "PARATOOL_BROKERS: kafka:9092\n      PARATOOL_GROUP: paratool-workers")]})
        rc, out = self.run_check(d)
        self.assertEqual(rc, 0, out)

    def test_env_of_an_undocumented_flag_fails(self) -> None:
        # train's help does not state the PARATOOL_<FLAG> rule: only the variables it names.
        d = self.repo({"compose.yaml": [("PARATOOL_KAFKA_CLIENT_ID: paratool-trainer",
                                         "PARATOOL_KAFKA_CLIENT_ID: paratool-trainer\n      PARATOOL_RETRAIN_EVERY: \"10\"")]})
        self.assertFails(d, "services.trainer.command: environment variable PARATOOL_RETRAIN_EVERY is not documented")

    def test_undocumented_env_fails_without_binary(self) -> None:
        d = self.repo({"k8s/configmap.yaml": [("PARATOOL_MODEL:", "PARATOOL_MODEL_PATH:")]})
        self.assertFails(d, "PARATOOL_MODEL_PATH is not one the service documents", binary=False)

    def test_undefined_k8s_variable_reference_fails(self) -> None:
        d = self.repo({"k8s/trainer.yaml": [("$(PARATOOL_BROKERS)", "$(KAFKA_BROKERS)")]})
        self.assertFails(d, "refers to $(KAFKA_BROKERS)")

    # --- files -----------------------------------------------------------------------------
    def test_missing_prometheus_config_fails(self) -> None:
        d = self.repo(delete=("prometheus.yml",))
        self.assertFails(d, "bind-mounted './prometheus.yml' does not exist")

    def test_missing_copy_source_fails(self) -> None:
        d = self.repo(delete=("healthcheck.sh",))
        self.assertFails(d, "COPY source 'Deploy/healthcheck.sh' does not exist")

    def test_dockerignore_excluding_copy_source_fails(self) -> None:
        d = self.repo({"Dockerfile.dockerignore": [("!Deploy/healthcheck.sh\n", "")]})
        self.assertFails(d, "is excluded by")

    def test_wrong_dockerfile_path_fails(self) -> None:
        d = self.repo({"compose.yaml": [("dockerfile: Deploy/Dockerfile", "dockerfile: Deploy/Containerfile")]})
        self.assertFails(d, "dockerfile 'Deploy/Containerfile' does not exist")

    def test_kustomization_missing_resource_fails(self) -> None:
        d = self.repo(delete=("k8s/keda.yaml",))
        self.assertFails(d, "resource 'keda.yaml' does not exist")

    def test_yaml_syntax_error_fails(self) -> None:
        d = self.repo({"k8s/worker.yaml": [("  replicas: 2", "  replicas: [2")]})
        self.assertFails(d, "YAML does not parse")

    def test_undeclared_named_volume_fails(self) -> None:
        d = self.repo({"compose.yaml": [("      - trainer-dataset:/var/lib/paratool/dataset",
                                         "      - dataset:/var/lib/paratool/dataset")]})
        self.assertFails(d, "named volume 'dataset' is not declared")

    # --- ports, probes, scraping -----------------------------------------------------------
    def test_probe_on_wrong_port_fails(self) -> None:
        d = self.repo({"k8s/worker.yaml": [("              containerPort: 9464", "              containerPort: 9999")]})
        self.assertFails(d, "containerPort 'metrics' is 9999", "probes port 9999")

    def test_compose_healthcheck_port_mismatch_fails(self) -> None:
        d = self.repo({"compose.yaml": [('"--threads", "1"]', '"--threads", "1", "--metrics-port", "9500"]')]})
        self.assertFails(d, "the image's HEALTHCHECK probes port 9464", "worker serves /metrics on 9500")

    def test_scrape_target_of_unknown_service_fails(self) -> None:
        d = self.repo({"prometheus.yml": [('"trainer:9465"', '"trainers:9465"')]})
        self.assertFails(d, "no compose service named 'trainers'", "'trainer' (train) is not scraped")

    def test_readiness_must_be_healthz(self) -> None:
        d = self.repo({"k8s/worker.yaml": [("""          readinessProbe:
            # 200 = model loaded and group joined; 503 before that and while draining.
            httpGet:
              path: /healthz""", """          readinessProbe:
            httpGet:
              path: /metrics""")]})
        self.assertFails(d, "readinessProbe path '/metrics', must be /healthz")

    # --- KEDA and topics -------------------------------------------------------------------
    def test_keda_topic_mismatch_fails(self) -> None:
        d = self.repo({"k8s/keda.yaml": [("topic: paratool.requests", "topic: paratool.request")]})
        self.assertFails(d, "trigger topic 'paratool.request', the worker consumes 'paratool.requests'")

    def test_keda_group_mismatch_fails(self) -> None:
        d = self.repo({"k8s/worker.yaml": [("            - paratool-workers", "            - paratool-serve")]})
        self.assertFails(d, "consumerGroup 'paratool-workers', the worker's group is 'paratool-serve'")

    def test_keda_more_replicas_than_partitions_fails(self) -> None:
        d = self.repo({"k8s/keda.yaml": [("maxReplicaCount: 8", "maxReplicaCount: 12")]})
        self.assertFails(d, "maxReplicaCount 12 > 8 partitions of paratool.requests")

    def test_keda_bootstrap_mismatch_fails(self) -> None:
        d = self.repo({"k8s/configmap.yaml": [("PARATOOL_BROKERS: my-cluster-kafka-bootstrap:9092",
                                               "PARATOOL_BROKERS: other-kafka-bootstrap:9092")]})
        self.assertFails(d, "the worker uses 'other-kafka-bootstrap:9092'")

    def test_compacted_topic_policy_fails(self) -> None:
        d = self.repo({"k8s/topics.yaml": [("""  topicName: paratool.tools
  partitions: 1
  replicas: 3
  config:
    cleanup.policy: "compact\"""", """  topicName: paratool.tools
  partitions: 1
  replicas: 3
  config:
    cleanup.policy: "delete\"""")]})
        self.assertFails(d, "paratool.tools: cleanup.policy is 'delete', must be 'compact'")

    def test_adapter_store_must_be_rwx(self) -> None:
        d = self.repo({"k8s/storage.yaml": [("accessModes: [ReadWriteMany]\n  # storageClassName: nfs-client\n  resources:\n    requests:\n      storage: 5Gi",
                                             "accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 5Gi")]})
        self.assertFails(d, "must be ReadWriteMany")

    def test_namespace_is_refused(self) -> None:
        d = self.repo({"k8s/configmap.yaml": [("  name: paratool-config\n", "  name: paratool-config\n  namespace: prod\n")]})
        self.assertFails(d, "sets metadata.namespace")

    def test_model_path_off_volume_fails(self) -> None:
        d = self.repo({"compose.yaml": [("      PARATOOL_MODEL: /models/model.gguf\n      PARATOOL_ADAPTER_STORE",
                                         "      PARATOOL_MODEL: /opt/model.gguf\n      PARATOOL_ADAPTER_STORE")]})
        self.assertFails(d, "model path /opt/model.gguf is on no mounted volume")


class ParseTest(unittest.TestCase):
    def test_argv(self) -> None:
        sub, flags = check.parse_argv(["serve", "--group", "g", "--exactly-once", "--transactional-id=t",
                                       "-X", "security.protocol=SASL_SSL", "-Xsasl.mechanism=PLAIN"])
        self.assertEqual(sub, "serve")
        self.assertEqual(flags, [("--group", "g"), ("--exactly-once", None), ("--transactional-id", "t"),
                                 ("-X", "security.protocol=SASL_SSL"), ("-X", "sasl.mechanism=PLAIN")])

    def test_dockerignore(self) -> None:
        with tempfile.TemporaryDirectory() as t:
            df = Path(t) / "Dockerfile"
            df.write_text("FROM x\n")
            (Path(t) / "Dockerfile.dockerignore").write_text(textwrap.dedent("""\
                .build
                **/__pycache__
                Deploy
                !Deploy/keep.sh
                """))
            _, rules = check.dockerignore_rules(df, Path(t))
            self.assertTrue(check.ignored(".build/release/x", rules))
            self.assertTrue(check.ignored("Sources/a/__pycache__/m.pyc", rules))
            self.assertTrue(check.ignored("Deploy/compose.yaml", rules))
            self.assertFalse(check.ignored("Deploy/keep.sh", rules))
            self.assertFalse(check.ignored("Sources/x.swift", rules))


if __name__ == "__main__":
    unittest.main()
