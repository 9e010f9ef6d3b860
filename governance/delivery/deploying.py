"""The `deploy` job and what it needs: each target kind's settings, the local scoring server as
a process of its own, the signed request to a CD system, and the Kubernetes manifests.

A local server is started by a shell that leaves it behind, in a session of its own: the worker
holds no child, so the server outlives a worker restart, and it is stopped by its pid after
checking that the process is the one Quorum started (its command names the deployment's folder).
"""

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml
from django.conf import settings
from django.urls import reverse

from governance.delivery.errors import InvalidTarget, TransientJobError
from governance.delivery.kinds import JobKind
from governance.delivery.models import Deployment, Job, Target
from governance.delivery.packaging import _free_port, _slug, archive_of
from governance.delivery.runner import JobContext

START_TIMEOUT = 90  # seconds for a deployed server to load its model and answer /health
STOP_TIMEOUT = 10
PROBE_TIMEOUT = 5
POST_TIMEOUT = 15
CALLBACK_TOLERANCE = 300  # seconds a signed callback's timestamp may be off
SIGNATURE_HEADER = "X-Quorum-Signature"
TIMESTAMP_HEADER = "X-Quorum-Timestamp"
DEFAULT_RESOURCES = {
    "cpu_request": "250m",
    "cpu_limit": "1",
    "memory_request": "256Mi",
    "memory_limit": "512Mi",
}
NAME_HINT = "Capitals, digits and _, starting with a letter (the name of a project secret)."


class DeployFailed(Exception):
    """The deployment cannot work: the job fails with this reason."""


# Settings per kind.


def clean_settings(kind: str, given: object) -> dict:
    """The settings of a target of `kind`, checked and normalised. Raises InvalidTarget naming
    the field."""
    from governance.delivery.services import SECRET_NAME

    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InvalidTarget(fields={"settings": ["An object of settings."]})

    def secret_name(field: str, required: bool) -> str:
        value = given.get(field) or ""
        if not value and not required:
            return ""
        if not isinstance(value, str) or not SECRET_NAME.match(value):
            raise InvalidTarget(fields={field: [NAME_HINT]})
        return value

    if kind == Target.Kind.LOCAL:
        port = given.get("port")
        if port in (None, ""):
            return {}
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 65535:
            raise InvalidTarget(fields={"port": ["A port from 1024 to 65535, or none for any."]})
        return {"port": port}
    if kind == Target.Kind.WEBHOOK:
        url = given.get("url") or ""
        parsed = urllib.parse.urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidTarget(fields={"url": ["An http or https address of the CD system."]})
        return {"url": url, "hmac_secret": secret_name("hmac_secret", required=True)}
    if kind == Target.Kind.KUBERNETES:
        namespace = given.get("namespace") or ""
        if not isinstance(namespace, str) or not _dns_label(namespace):
            raise InvalidTarget(
                fields={"namespace": ["A Kubernetes namespace: lower-case letters, digits, -."]}
            )
        replicas = given.get("replicas", 1)
        if isinstance(replicas, str) and replicas.isdigit():
            replicas = int(replicas)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 50:
            raise InvalidTarget(fields={"replicas": ["A whole number from 1 to 50."]})
        prefix = given.get("image_prefix") or ""
        if not isinstance(prefix, str) or any(c.isspace() for c in prefix) or len(prefix) > 200:
            raise InvalidTarget(
                fields={"image_prefix": ["An image registry and prefix, like ghcr.io/team."]}
            )
        return {
            "namespace": namespace,
            "replicas": replicas,
            "image_prefix": prefix.rstrip("/"),
            "kubeconfig_secret": secret_name("kubeconfig_secret", required=False),
        }
    raise InvalidTarget(fields={"kind": ["One of local, webhook, kubernetes."]})


def _dns_label(text: str) -> bool:
    return (
        0 < len(text) <= 63
        and text[0].isalnum()
        and text[-1].isalnum()
        and all(c.islower() or c.isdigit() or c == "-" for c in text)
    )


def needs_package(target: Target) -> bool:
    """Local servers unpack the package, and Kubernetes runs its image unless the target names
    a registry; a CD system is told of the package when there is one."""
    if target.kind == Target.Kind.LOCAL:
        return True
    return target.kind == Target.Kind.KUBERNETES and not target.settings.get("image_prefix")


def newest_package_of(version_id: int) -> Job | None:
    return (
        Job.objects.filter(version_id=version_id, kind="package", state=Job.State.SUCCEEDED)
        .order_by("-created_at", "-id")
        .first()
    )


# Signing, for both directions of a webhook target.


def signature(key: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "timestamp.body" with the target's key, as `sha256=<hex>`."""
    digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def signature_matches(key: str, timestamp: str, body: bytes, given: str) -> bool:
    return bool(given) and hmac.compare_digest(signature(key, timestamp, body), given)


def fresh(timestamp: str, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return timestamp.isdigit() and abs(now - int(timestamp)) <= CALLBACK_TOLERANCE


# Local servers: processes of their own.


def deployment_folder(deployment_id: int) -> Path:
    return Path(settings.DATA_DIR) / "deployments" / str(deployment_id)


def _stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """The process runs (a zombie waiting for its parent to reap it does not)."""
    stat = _stat(pid)
    if stat is None:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def is_ours(pid: int, deployment_id: int) -> bool:
    """The pid is still the scoring server of this deployment, not a process that took the
    number after it ended."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    folder = (str(deployment_folder(deployment_id)) + os.sep).encode()  # 1/ is not 12/
    return alive(pid) and any(part.startswith(folder) for part in command)


def terminate(runtime: dict, deployment_id: int) -> str:
    """Stop a deployment's local server, when it runs and is ours; says what happened."""
    pid = runtime.get("pid")
    if not isinstance(pid, int) or not is_ours(pid, deployment_id):
        return "no server of this deployment was running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return f"killed the server (pid {pid}): it did not stop within {STOP_TIMEOUT} s"
    return f"stopped the server (pid {pid})"


def _start_server(context_dir: Path, port: int, environment: dict, log_path: Path) -> int:
    """Start the server through a shell that leaves it running and exits: the caller holds no
    child. Returns the server's pid."""
    command = [
        sys.executable,
        str(context_dir / "server.py"),
        "--root",
        str(context_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    launched = subprocess.run(  # noqa: S603 - our interpreter, our server, our folder
        ["/bin/sh", "-c", 'exec "$@" >"$LOG" 2>&1 </dev/null & echo $!', "sh", *command],
        env={**environment, "LOG": str(log_path)},
        cwd=context_dir,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        start_new_session=True,
    )
    return int(launched.stdout.strip())


def get_health(endpoint: str, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Ask `endpoint`/health; healthy on a 200. Says why not otherwise."""
    url = endpoint.rstrip("/") + "/health"
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        return False, "the endpoint is not an http address"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - checked
            body = answer.read(500).decode(errors="replace")
            return answer.status == 200, f"{answer.status} {body}".strip()[:500]
    except urllib.error.HTTPError as error:
        return False, f"answered {error.code}"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return False, f"did not answer: {reason}"[:500]


def _deploy_local(context: JobContext, deployment: Deployment) -> dict:
    target = deployment.target
    package = deployment.package_job
    archive = archive_of(package) if package else None
    if archive is None:
        raise DeployFailed("the version's package archive is gone: package it again")
    folder = deployment_folder(deployment.pk)
    context.step(f"unpacking package job {package.pk}", 20)
    shutil.rmtree(folder, ignore_errors=True)  # a retried job starts clean
    folder.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    build = folder / "context"

    context.step("starting the scoring server", 40)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(folder),
        "PYTHONUNBUFFERED": "1",
    }
    for name in target.secrets:
        environment[name] = context.secret(name)
    fixed = target.settings.get("port")
    if fixed:
        # One port: the old server must give it up first, so this replacement has a gap.
        from governance.delivery.selectors import previous_of

        for previous in previous_of(deployment):
            context.log(terminate(previous.runtime, previous.pk))
    port = fixed or _free_port()
    log_path = folder / "server.log"
    pid = _start_server(build, port, environment, log_path)
    endpoint = f"http://127.0.0.1:{port}"
    runtime = {"pid": pid, "port": port, "log": str(log_path), "folder": str(folder)}
    context.log(f"server pid {pid} on {endpoint}")

    try:
        detail = _wait_for_health(context, runtime, endpoint, log_path)
    except BaseException:
        # Cancelled, failed or timed out: no server is left behind by a deployment that failed.
        terminate(runtime, deployment.pk)
        raise
    context.log(f"/health: {detail}")
    return {
        "state": Deployment.State.LIVE,
        "endpoint": endpoint,
        "runtime": runtime,
        "health": Deployment.Health.HEALTHY,
        "detail": detail,
    }


def _wait_for_health(context: JobContext, runtime: dict, endpoint: str, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if not alive(runtime["pid"]):
            _keep_log(context, log_path)
            raise DeployFailed("the scoring server did not start; its log is in the job's log")
        healthy, detail = get_health(endpoint, timeout=2)
        if healthy:
            return detail
        if time.monotonic() > deadline:
            _keep_log(context, log_path)
            raise DeployFailed(f"the scoring server did not answer within {START_TIMEOUT} s")
        context.step("waiting for /health", 60)
        time.sleep(0.5)


def _keep_log(context: JobContext, log_path: Path) -> None:
    lines = log_path.read_text(errors="replace").splitlines()[-200:] if log_path.exists() else []
    context.log("scoring server log:")
    context.log("\n".join(lines) or "(empty)")


def callback_url(deployment_id: int) -> str:
    path = reverse("api-deployment-callback", args=[deployment_id])
    return settings.QUORUM_BASE_URL + path


def request_body(deployment: Deployment) -> dict:
    """What a CD system is told: what to deploy, from where, and where to answer."""
    target, version = deployment.target, deployment.version
    package = deployment.package_job
    archive = archive_of(package) if package else None
    return {
        "deployment": deployment.pk,
        "project": target.project.slug,
        "target": target.name,
        "model": version.model.name,
        "version": version.version,
        "stage": target.stage,
        "package": None
        if archive is None
        else {
            "job": package.pk,
            "sha256": (package.result.get("package") or {}).get("sha256"),
            "url": settings.QUORUM_BASE_URL
            + reverse("job_package", args=[target.project.slug, package.pk]),
        },
        "callback_url": callback_url(deployment.pk),
        "rollback_of": deployment.rollback_of_id,
    }


def _deploy_webhook(context: JobContext, deployment: Deployment) -> dict:
    target = deployment.target
    key = context.secret(target.settings["hmac_secret"])
    body = json.dumps(request_body(deployment), sort_keys=True).encode()
    stamp = str(int(time.time()))
    context.step(f"asking {target.settings['url']} to deploy", 40)
    asked = urllib.request.Request(  # noqa: S310 - an http(s) address, checked on save
        target.settings["url"],
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: signature(key, stamp, body),
        },
    )
    try:
        with urllib.request.urlopen(asked, timeout=POST_TIMEOUT) as answer:  # noqa: S310
            status = answer.status
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise TransientJobError(f"the CD system answered {error.code}") from error
        raise DeployFailed(f"the CD system refused the request: {error.code}") from error
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TransientJobError(f"the CD system did not answer: {reason}") from error
    context.log(f"the CD system answered {status}; waiting for its callback")
    return {"state": Deployment.State.DEPLOYING, "answered": status}


def manifests_of(deployment: Deployment) -> tuple[list[dict], list[str]]:
    """A Deployment and a Service for the version on the target, and notes on what was
    assumed. Secrets are referenced from a Kubernetes Secret by name: never their values."""
    from governance.delivery.selectors import recommendation_of

    target, version = deployment.target, deployment.version
    options = target.settings
    notes = []
    name = _slug(f"{version.model.name}-{target.name}")[:50].strip("-")
    if options.get("image_prefix"):
        image = f"{options['image_prefix']}/{_slug(version.model.name)}:{version.version}"
    else:
        package = deployment.package_job
        docker = (package.result or {}).get("docker") or {} if package else {}
        image = docker.get("tag") or (
            f"quorum/{_slug(version.model.name)}:{version.version}-job{package.pk}"
        )
        if not docker.get("built"):
            notes.append(f"the image {image} was not built here: build it from the package")
    recommended = recommendation_of(version)
    if recommended is None:
        recommended = DEFAULT_RESOURCES
        notes.append("no profile of this version yet: default resources")
    resources = {
        "requests": {"cpu": recommended["cpu_request"], "memory": recommended["memory_request"]},
        "limits": {"cpu": recommended["cpu_limit"], "memory": recommended["memory_limit"]},
    }
    secret_resource = f"{name}-secrets"
    env = [
        {"name": secret, "valueFrom": {"secretKeyRef": {"name": secret_resource, "key": secret}}}
        for secret in target.secrets
    ]
    if target.secrets:
        notes.append(
            f"create the Kubernetes Secret {secret_resource} with the keys "
            f"{', '.join(target.secrets)} before applying"
        )
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "quorum"}
    metadata = {
        "name": name,
        "namespace": options["namespace"],
        "labels": {
            **labels,
            "quorum.deployment": str(deployment.pk),
            "quorum.version": str(version.version),
        },
    }
    probe = {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10}
    container = {
        "name": "model",
        "image": image,
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": resources,
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": 30},
    }
    if env:
        container["env"] = env
    manifests = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": options.get("replicas", 1),
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
    ]
    return manifests, notes


def as_yaml(manifests: list[dict]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=False)


def _cluster_client(context: JobContext, target: Target) -> object | None:
    """A Kubernetes API client from the target's kubeconfig secret, or from inside a cluster;
    None when neither is there."""
    from kubernetes import client, config

    secret = target.settings.get("kubeconfig_secret")
    if secret:
        try:
            loaded = yaml.safe_load(context.secret(secret))
        except yaml.YAMLError as error:
            raise DeployFailed(f"the secret {secret} is not a kubeconfig") from error
        return config.new_client_from_config_dict(loaded, persist_config=False)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return None


def _apply(api_client: object, manifests: list[dict]) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    for manifest in manifests:
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        if manifest["kind"] == "Deployment":
            create, patch = apps.create_namespaced_deployment, apps.patch_namespaced_deployment
        else:
            create, patch = core.create_namespaced_service, core.patch_namespaced_service
        try:
            try:
                # The answer (the object as stored) is not needed: not read into models.
                create(namespace, manifest, _preload_content=False)
            except ApiException as error:
                if error.status != 409:
                    raise
                patch(name, namespace, manifest, _preload_content=False)
        except ApiException as error:
            if error.status >= 500:
                raise TransientJobError(f"the cluster answered {error.status}") from error
            raise DeployFailed(
                f"the cluster refused {manifest['kind']} {name}: {error.status} {error.reason}"
            ) from error
        except OSError as error:
            raise TransientJobError(f"the cluster did not answer: {error}") from error


def _deploy_kubernetes(context: JobContext, deployment: Deployment) -> dict:
    target = deployment.target
    context.step("rendering the manifests", 30)
    manifests, notes = manifests_of(deployment)
    rendered = as_yaml(manifests)
    for note in notes:
        context.log(f"note: {note}")
    runtime = {"manifests": rendered, "notes": notes}
    api_client = _cluster_client(context, target)
    if api_client is None:
        how = (
            "No cluster is configured (no kubeconfig secret on the target, not inside a "
            "cluster): download the manifests and run `kubectl apply -f` on them."
        )
        context.log(how)
        return {"state": Deployment.State.MANIFESTS_READY, "runtime": runtime, "detail": how}
    context.step("applying the manifests", 60)
    _apply(api_client, manifests)
    name, namespace = manifests[1]["metadata"]["name"], target.settings["namespace"]
    endpoint = f"http://{name}.{namespace}.svc.cluster.local"
    context.log(f"applied; the service answers inside the cluster at {endpoint}")
    return {
        "state": Deployment.State.LIVE,
        "runtime": runtime,
        "endpoint": endpoint,
        "detail": "applied to the cluster",
    }


WORK = {
    Target.Kind.LOCAL: _deploy_local,
    Target.Kind.WEBHOOK: _deploy_webhook,
    Target.Kind.KUBERNETES: _deploy_kubernetes,
}


def deploy_model(context: JobContext) -> dict:
    """The job: do the target kind's work, then record how the deployment stands."""
    from governance.delivery import runner, services

    deployment = (
        Deployment.objects.select_related(
            "target__project", "version__model", "package_job", "rollback_of"
        )
        .filter(pk=context.params.get("deployment"))
        .first()
    )
    if deployment is None:
        raise DeployFailed("the deployment is gone")
    if deployment.state != Deployment.State.DEPLOYING:
        context.log(f"the deployment is {deployment.get_state_display().lower()} already")
        return {"deployment": deployment.pk, "state": deployment.state}
    try:
        outcome = WORK[deployment.target.kind](context, deployment)
    except TransientJobError as problem:
        if context.job.attempts < runner.MAX_ATTEMPTS:
            raise
        services.finish_deployment(
            deployment_id=deployment.pk, state=Deployment.State.FAILED, detail=str(problem)
        )
        raise
    except Exception as problem:  # any failure of the work fails the deployment with it
        reason = context.masked(str(problem)) or type(problem).__name__
        services.finish_deployment(
            deployment_id=deployment.pk, state=Deployment.State.FAILED, detail=reason
        )
        raise
    if outcome["state"] != Deployment.State.DEPLOYING:
        context.step("recording the deployment", 90)
        services.finish_deployment(
            deployment_id=deployment.pk,
            state=outcome["state"],
            endpoint=outcome.get("endpoint", ""),
            detail=outcome.get("detail", ""),
            runtime=outcome.get("runtime"),
            health=outcome.get("health"),
        )
    return {"deployment": deployment.pk, **{k: v for k, v in outcome.items() if k != "runtime"}}


DEPLOY = JobKind("deploy", "Deploy the model", deploy_model)
