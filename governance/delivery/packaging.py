"""The `package` job: turn a model version into a Docker build context that serves it.

Steps: fetch the version's MLflow model; convert it to ONNX where its flavor allows (scikit-learn,
through skl2onnx) and check the ONNX model predicts as the native one does on sample rows; write
the build context (MLflow's own generated Dockerfile, extended with Quorum's scoring server) and
archive it under `DATA_DIR/packages/<job id>/`; build the image where a Docker engine is
configured; start the packaged server locally and ask it for health, metadata and predictions;
log the ONNX model and the archive back to the version's MLflow run and tag the version.
"""

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata as distributions
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from governance.delivery import conversion, scoring_server
from governance.delivery.conversion import DEFAULT_TOLERANCE
from governance.delivery.errors import TransientJobError
from governance.delivery.kinds import JobKind
from governance.delivery.models import Job, Secret
from governance.delivery.runner import JobContext
from governance.errors import InvalidInput
from governance.registry.errors import MlflowUnavailable
from governance.registry.mlflow_client import Mlflow

START_TIMEOUT = 90  # seconds for the packaged server to load its model and answer /health
ARCHIVE = "package.tar.gz"
SERVER_REQUIREMENTS = ("numpy", "pandas", "onnxruntime")
# The project secrets that log in to QUORUM_IMAGE_REGISTRY, when it has both.
REGISTRY_LOGIN = ("DOCKER_REGISTRY_USERNAME", "DOCKER_REGISTRY_PASSWORD")


class PackageFailed(Exception):
    """The package does not work: the job fails with this reason."""


def check_params(params: dict) -> None:
    """Raises InvalidInput naming `tolerance` unless it is a number of zero or more."""
    tolerance = params.get("tolerance", DEFAULT_TOLERANCE)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise InvalidInput(fields={"tolerance": ["A number, such as 0.0001."]})
    if not np.isfinite(tolerance) or tolerance < 0:
        raise InvalidInput(fields={"tolerance": ["Zero or more."]})


def package_folder(job: Job) -> Path:
    return Path(settings.DATA_DIR) / "packages" / str(job.pk)


def archive_of(job: Job) -> Path | None:
    """The job's archive, when it succeeded and the file is still there."""
    if job.kind != "package" or job.state != Job.State.SUCCEEDED:
        return None
    path = package_folder(job) / ARCHIVE
    return path if path.is_file() else None


def package_model(context: JobContext) -> dict:
    job, version = context.job, context.job.version
    name, number = version.model.name, version.version
    tolerance = float(context.params.get("tolerance", DEFAULT_TOLERANCE))
    folder = package_folder(job)
    shutil.rmtree(folder, ignore_errors=True)  # a retried job starts clean
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="quorum-package-") as scratch:
        context.step(f"fetching {name} v{number} from MLflow", 5)
        root = conversion.download(version, scratch)
        from mlflow.models import Model

        described = Model.load(str(root / "MLmodel"))
        flavors = sorted(described.flavors or {})
        schema = described.get_input_schema()
        columns = conversion.input_columns(schema)
        sample = conversion.sample_rows(described, root, columns)
        context.log(f"flavors: {', '.join(flavors)}; {len(sample)} sample rows")

        context.step("converting to ONNX", 20)
        onnx, onnx_bytes = conversion.convert_to_onnx(
            context, root, flavors, columns, sample, tolerance
        )

        context.step("writing the Docker build context", 40)
        build = folder / "context"
        serves = "onnx" if onnx.get("passed") else "native"
        _write_context(root, build, onnx_bytes if serves == "onnx" else None)
        meta = {
            "model": name,
            "version": number,
            "flavors": flavors,
            "signature": {"inputs": columns},
            "serves": serves,
            "quorum_job": job.pk,
        }
        (build / "metadata.json").write_text(json.dumps(meta, indent=2))
        archive = folder / ARCHIVE
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(build, arcname="context")
        package = {
            "path": str(archive),
            "size_bytes": archive.stat().st_size,
            "sha256": _sha256(archive),
            "files": sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())[
                :200
            ],
        }
        context.log(f"archive {package['size_bytes']:,} bytes, sha256 {package['sha256']}")

        context.step("building the image", 55)
        docker = _build_image(context, build, _slug(name), f"{number}-job{job.pk}")

        context.step("starting the scoring server locally", 65)
        debug = _debug(context, build, sample)

        context.step("logging the package to MLflow", 85)
        artifacts = _log_to_mlflow(context, job, archive, onnx_bytes, onnx)
    return {
        "model": name,
        "version": number,
        "flavors": flavors,
        "serves": serves,
        "onnx": onnx,
        "package": package,
        "docker": docker,
        "debug": debug,
        "mlflow": artifacts,
    }


def _write_context(root: Path, build: Path, onnx_bytes: bytes | None) -> None:
    """MLflow writes the Dockerfile and the model folder; Quorum adds its server to them."""
    from mlflow.models.flavor_backend_registry import get_flavor_backend

    backend = get_flavor_backend(str(root), docker_build=True, env_manager="virtualenv")
    backend.generate_dockerfile(str(root), str(build))
    shutil.copy(scoring_server.__file__, build / "server.py")
    if onnx_bytes is not None:
        (build / "model.onnx").write_bytes(onnx_bytes)
    (build / "requirements-server.txt").write_text("\n".join(_pinned(root)) + "\n")
    dockerfile = build / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().rstrip()
        + "\n\n# Added by Quorum: its scoring server, with /predict, /health and /metadata.\n"
        "COPY server.py metadata.json requirements-server.txt /opt/quorum/\n"
        + ("COPY model.onnx /opt/quorum/\n" if onnx_bytes is not None else "")
        + "RUN pip install --no-cache-dir -r /opt/quorum/requirements-server.txt\n"
        "EXPOSE 8080\n"
        'ENTRYPOINT ["python", "/opt/quorum/server.py", "--root", "/opt/quorum", '
        '"--model-dir", "/opt/ml/model", "--port", "8080"]\n'
    )


def _pinned(root: Path) -> list[str]:
    """The model's requirements and the server's, each pinned to the version installed here
    when the model left it open."""
    wanted = []
    requirements = root / "requirements.txt"
    if requirements.exists():
        wanted = [line.strip() for line in requirements.read_text().splitlines()]
    wanted = [line for line in wanted if line and not line.startswith(("#", "-"))]
    wanted += [name for name in SERVER_REQUIREMENTS if name not in wanted]
    pinned = []
    for line in dict.fromkeys(wanted):
        if any(sign in line for sign in "=<>~@;"):
            pinned.append(line)
            continue
        try:
            pinned.append(f"{line}=={distributions.version(line)}")
        except distributions.PackageNotFoundError:
            pinned.append(line)
    return pinned


def _build_image(context: JobContext, build: Path, name: str, tag: str) -> dict:
    """Build the context into an image where a Docker engine is configured, and push it when a
    registry is (settings.QUORUM_IMAGE_REGISTRY, logging in with the project's secrets
    DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD where it has them).
    Raises TransientJobError when the engine does not answer, PackageFailed when the build or
    the push fails (their output in the job's log)."""
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        context.log("no Docker engine here: the context is ready to build")
        return {"built": False, "why_not": "no Docker engine here: the context is ready to build"}
    import docker

    registry = settings.QUORUM_IMAGE_REGISTRY.strip().rstrip("/")
    repository = f"{registry}/quorum-{name}" if registry else f"quorum/{name}"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise TransientJobError(f"the Docker engine did not answer: {error}") from error
    try:
        image, output = client.images.build(path=str(build), tag=f"{repository}:{tag}", rm=True)
    except docker.errors.BuildError as error:
        context.log("\n".join(_build_lines(error.build_log)))
        raise PackageFailed(f"the image did not build: {error.msg}") from error
    except docker.errors.APIError as error:
        raise PackageFailed(f"the Docker engine refused the build: {error}") from error
    context.log("\n".join(_build_lines(output)))
    built = {"built": True, "image": f"{repository}:{tag}", "id": image.id, "pushed": False}
    context.log(f"built the image {built['image']} ({image.id})")
    if not registry:
        return built | {"why_not_pushed": "no registry configured (QUORUM_IMAGE_REGISTRY)"}
    return built | _push(context, client, repository, tag)


def _build_lines(output: object) -> list[str]:
    return [str(chunk.get("stream", "")).rstrip() for chunk in output or [] if "stream" in chunk]


def _push(context: JobContext, client: object, repository: str, tag: str) -> dict:
    import docker

    auth = None
    if Secret.objects.filter(project=context.job.project, name__in=REGISTRY_LOGIN).count() == len(
        REGISTRY_LOGIN
    ):
        username, password = (context.secret(name) for name in REGISTRY_LOGIN)
        auth = {"username": username, "password": password}
    context.step(f"pushing {repository}:{tag}", 60)
    digest = ""
    try:
        for event in client.images.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth
        ):
            if "error" in event:
                raise PackageFailed(f"the registry refused the image: {event['error']}")
            digest = (event.get("aux") or {}).get("Digest", digest)
            if event.get("status"):
                context.log(f"push: {event['status']} {event.get('progress', '')}".rstrip())
    except docker.errors.APIError as error:
        raise PackageFailed(f"the image was not pushed: {error}") from error
    context.log(f"pushed {repository}:{tag} {digest}")
    return {"pushed": True, "repository": repository, "digest": digest}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    asked = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(asked, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _debug(context: JobContext, build: Path, sample: pd.DataFrame) -> dict:
    """Start the packaged server on 127.0.0.1 with Quorum's own Python, ask it what a client
    would, and stop it whatever happens. Raises PackageFailed with the server's log."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    output = build.parent / "server.log"
    command = [sys.executable, str(build / "server.py"), "--root", str(build)]
    with output.open("wb") as sink:
        server = subprocess.Popen(  # noqa: S603 - our own server, our own interpreter
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=build,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                _keep_log(context, output)
                raise PackageFailed(
                    f"the scoring server did not start (exit code {server.returncode}); "
                    "its log is in the job's log"
                )
            with contextlib.suppress(OSError):
                if _call(f"{base}/health")[0] == 200:
                    break
            if time.monotonic() > deadline:
                _keep_log(context, output)
                raise PackageFailed(f"the scoring server did not answer within {START_TIMEOUT} s")
            context.step("waiting for the scoring server", 70)
            time.sleep(0.5)
        health = _call(f"{base}/health")
        metadata = _call(f"{base}/metadata")
        rows = json.loads(sample.head(5).to_json(orient="records"))
        began = time.perf_counter()
        predicted = _call(f"{base}/predict", {"rows": rows})
        latency = time.perf_counter() - began
        refused = _call(f"{base}/predict", {"rows": "not rows"})
        answers = {
            "health": {"status": health[0], "body": health[1]},
            "metadata": {"status": metadata[0], "body": metadata[1]},
            "predict": {"status": predicted[0], "rows": len(rows), "body": predicted[1]},
            "bad_request": {"status": refused[0], "body": refused[1]},
        }
        for call, answer in answers.items():
            context.log(f"{call}: {answer['status']} {json.dumps(answer['body'])[:500]}")
        passed = (
            health[0] == 200
            and metadata[0] == 200
            and predicted[0] == 200
            and len(predicted[1].get("predictions", [])) == len(rows)
            and refused[0] == 400
        )
        if not passed:
            raise PackageFailed("the scoring server did not answer as it should")
        return {"passed": True, "answers": answers, "predict_latency_seconds": latency,
                "log": _keep_log(context, output)}  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _keep_log(context: JobContext, output: Path) -> list[str]:
    lines = output.read_text(errors="replace").splitlines()[-200:]
    context.log("scoring server log:")
    context.log("\n".join(lines) or "(empty)")
    return lines


def _log_to_mlflow(
    context: JobContext, job: Job, archive: Path, onnx_bytes: bytes | None, onnx: dict
) -> dict:
    mlflow = Mlflow()
    name, number = job.version.model.name, job.version.version
    folder = f"quorum-package-{job.pk}"
    try:
        run_id = mlflow.source_run_of(name, number)
        logged = []
        if run_id:
            mlflow.log_artifact(run_id, str(archive), folder)
            logged.append(f"{folder}/{archive.name}")
            if onnx_bytes is not None:
                onnx_file = archive.parent / "model.onnx"
                onnx_file.write_bytes(onnx_bytes)
                mlflow.log_artifact(run_id, str(onnx_file), folder)
                logged.append(f"{folder}/model.onnx")
        mlflow.set_version_tag(name, number, "quorum.package_job", str(job.pk))
        mlflow.set_version_tag(name, number, "quorum.onnx", str(bool(onnx.get("passed"))).lower())
    except MlflowUnavailable as error:
        raise TransientJobError(error.message) from error
    context.log(f"logged to run {run_id or '(none)'}: {', '.join(logged) or 'nothing'}")
    return {"run_id": run_id, "artifacts": logged,
            "tags": {"quorum.package_job": str(job.pk),
                     "quorum.onnx": str(bool(onnx.get("passed"))).lower()}}  # fmt: skip


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "model"


PACKAGE = JobKind("package", "Package the model", package_model, check=check_params)
