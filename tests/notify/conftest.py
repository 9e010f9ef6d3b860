import pytest

from governance.notify import services
from governance.notify.kinds import Kind
from governance.notify.models import Notification
from tests.notify.smtp import free_port


@pytest.fixture
def smtp_port(settings) -> int:
    """Quorum's email goes by SMTP to a port on 127.0.0.1 where nothing listens yet."""
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    return port


@pytest.fixture
def say(project):
    """Notify people as another area would: `say(recipients, key=..., **overrides)`."""

    def _say(recipients, *, key: str = "release-3-requested", **overrides) -> list[Notification]:
        fields = {
            "kind": Kind.RELEASE_REQUESTED,
            "subject": "credit-scoring v3 waits for your decision for production",
            "body": "olivia asks to release credit-scoring v3 to production.\nAUC 0.91.",
            "url": "/projects/credit-risk/models/credit-scoring/versions/3/",
            "project": project,
            **overrides,
        }
        return services.notify(recipients=recipients, key=key, **fields)

    return _say
