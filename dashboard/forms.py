"""Forms check the shape of what people type; services check what it means."""

from datetime import timedelta

from django import forms
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from governance.access import services
from governance.access.models import SLUG_PATTERN
from governance.access.roles import Role
from governance.errors import DomainError


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Show a service's error on the form: per field where it names one, else on the form."""
    for field, messages in error.fields.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)
    if not error.fields:
        form.add_error(None, error.message)


class ProjectForm(forms.Form):
    slug = forms.RegexField(
        regex=SLUG_PATTERN,
        min_length=2,
        max_length=50,
        help_text="Used in addresses: lower-case letters, digits and hyphens.",
        error_messages={"invalid": "Use lower-case letters, digits and single hyphens."},
    )
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class RenameProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    LIFETIMES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]

    name = forms.CharField(max_length=80, help_text="Where the token is used, e.g. “CI deploy”.")
    lifetime = forms.TypedChoiceField(choices=LIFETIMES, coerce=int, initial=30, label="Expires in")
    project = forms.ChoiceField(
        required=False,
        label="For CI in",
        help_text="A CI token only asks the release gate and opens release requests there.",
    )

    def __init__(self, *args: object, projects: list[tuple[str, str]] = (), **kwargs: object):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "Everything I may do"), *projects]

    @property
    def lifetime_delta(self) -> timedelta:
        return timedelta(days=self.cleaned_data["lifetime"])


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, with the email sent by a worker once the request has committed.

    The page answers at once whether or not the address is known, so its timing tells nothing.
    """

    def save(
        self,
        domain_override: str | None = None,
        use_https: bool = False,
        request: HttpRequest | None = None,
        **kwargs: object,
    ) -> None:
        services.request_password_reset(
            email=self.cleaned_data["email"],
            domain=domain_override or (request.get_host() if request else "localhost"),
            use_https=use_https,
        )


class AuditedPasswordChangeForm(PasswordChangeForm):
    def save(self, commit: bool = True) -> AbstractBaseUser:
        password = self.cleaned_data["new_password1"]
        services.set_password(actor=self.user, user=self.user, password=password, reason="changed")
        return self.user


class AuditedSetPasswordForm(SetPasswordForm):
    """The form behind the emailed reset link."""

    def save(self, commit: bool = True) -> AbstractBaseUser:
        password = self.cleaned_data["new_password1"]
        services.set_password(actor=None, user=self.user, password=password, reason="reset")
        return self.user
