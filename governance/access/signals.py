"""Sign-in events reach the audit trail through Django's and django-axes' signals."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from governance.access import services


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender: object, user: object, **kwargs: object) -> None:
    services.note_sign_in(user=user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender: object, user: object = None, **kwargs: object) -> None:
    services.note_sign_out(user=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender: object, credentials: dict, **kwargs: object) -> None:
    services.note_failed_sign_in(username=str(credentials.get("username", "")))


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def _locked_out(sender: object, username: str = "", **kwargs: object) -> None:
    services.note_lockout(username=username or "")
