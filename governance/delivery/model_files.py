"""The `inspect` job: fetch a model version's files from MLflow and say what they are: its
flavors (which decide how it can be packaged), its signature, what it needs installed, its size.
It is the first step of packaging, and worth running alone before a release."""

import tempfile

from governance.delivery import conversion
from governance.delivery.kinds import JobKind
from governance.delivery.runner import JobContext


def inspect_model(context: JobContext) -> dict:
    version = context.job.version
    name, number = version.model.name, version.version
    with tempfile.TemporaryDirectory(prefix="quorum-inspect-") as folder:
        context.step(f"fetching {name} v{number} from MLflow", 10)
        root = conversion.download(version, folder)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        context.log(f"{len(files)} files, {size:,} bytes")
        context.step("reading MLmodel", 60)
        from mlflow.models import Model

        described = Model.load(str(root / "MLmodel"))
        flavors = described.flavors or {}
        for flavor, details in sorted(flavors.items()):
            context.log(f"flavor {flavor}: {_flavor_words(details)}")
        requirements = root / "requirements.txt"
        needs = (
            [line.strip() for line in requirements.read_text().splitlines() if line.strip()]
            if requirements.exists()
            else []
        )
        context.log("needs: " + (", ".join(needs) or "nothing declared"))
        context.step("done reading", 95)
        return {
            "model": name,
            "version": number,
            "flavors": sorted(flavors),
            "python_version": (flavors.get("python_function") or {}).get("python_version"),
            "loader_module": (flavors.get("python_function") or {}).get("loader_module"),
            "signature": described.signature.to_dict() if described.signature else {},
            "requirements": needs,
            "files": [str(p.relative_to(root)) for p in files][:200],
            "size_bytes": size,
        }


def _flavor_words(details: dict) -> str:
    shown = {k: v for k, v in (details or {}).items() if isinstance(v, str | int | float)}
    return ", ".join(f"{k} {v}" for k, v in sorted(shown.items())) or "no details"


INSPECT = JobKind("inspect", "Inspect the model files", inspect_model)
