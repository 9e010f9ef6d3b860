"""A monitor of the credit-risk project, watching a reference of 2,000 generated applicants."""

import pyarrow as pa
import pytest

from governance.monitoring import services
from governance.registry import services as registry
from tests.monitoring.test_monitors import frame


@pytest.fixture
def monitor(project, scientist):
    reference = registry.keep_table(
        actor=scientist,
        project=project,
        name="applicants",
        table=pa.Table.from_pandas(frame(2000), preserve_index=False),
        source="reference.csv",
    )
    return services.create_monitor(
        actor=scientist, project=project, name="credit inputs", reference=reference
    )
