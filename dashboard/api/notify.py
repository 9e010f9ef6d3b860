"""/api/v1/notifications/: your own notifications, their read state and your preferences."""

import django_filters
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.pagination import CursorPagination
from governance.notify import selectors, services
from governance.notify.emails import absolute
from governance.notify.errors import InvalidPreferences
from governance.notify.kinds import Kind
from governance.notify.models import Delivery, EmailState, Notification


class NotificationOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    subject = serializers.CharField()
    body = serializers.CharField()
    url = serializers.CharField(help_text="The page it is about: a path of this site.")
    link = serializers.SerializerMethodField(help_text="The same page as a full address.")
    project = serializers.CharField(source="project.slug", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
    unread = serializers.BooleanField(source="is_unread")
    email_state = serializers.ChoiceField(choices=EmailState.choices)

    def get_link(self, notification: Notification) -> str:
        return absolute(notification.url)


class ReadAllOut(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many were unread and are now read.")


class PreferenceOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices)
    label = serializers.CharField()
    delivery = serializers.ChoiceField(choices=Delivery.choices)


class PreferencesOut(serializers.Serializer):
    preferences = PreferenceOut(many=True)


class PreferencesIn(serializers.Serializer):
    preferences = serializers.DictField(
        child=serializers.CharField(),
        help_text="Kind → delivery (immediately, daily or off), e.g. "
        '{"release.requested": "immediately", "mention": "daily"}. Kinds left out keep theirs.',
    )


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.ChoiceFilter(
        choices=[("true", "Only unread"), ("false", "Only read")],
        method="filter_unread",
        help_text="true: only the unread ones; false: only the read ones.",
    )

    class Meta:
        model = Notification
        fields: list[str] = []

    def filter_unread(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(read_at__isnull=value == "true")


def _preferences_out(choices: dict[str, str]) -> dict:
    rows = [
        {"kind": kind, "label": Kind(kind).label, "delivery": delivery}
        for kind, delivery in choices.items()
    ]
    return PreferencesOut({"preferences": rows}).data


class NotificationListView(generics.GenericAPIView):
    pagination_class = CursorPagination  # newest first
    filter_backends = [DjangoFilterBackend]
    filterset_class = NotificationFilter

    def get_queryset(self) -> QuerySet[Notification]:
        if getattr(self, "swagger_fake_view", False):  # the schema is being generated
            return Notification.objects.none()
        return selectors.notifications_for(self.request.user)

    @extend_schema(responses=NotificationOut(many=True), summary="Your notifications")
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(NotificationOut(page, many=True).data)


class NotificationReadView(APIView):
    @extend_schema(request=None, responses=NotificationOut, summary="Mark one read")
    def post(self, request: Request, notification_id: int) -> Response:
        notification = selectors.notification_of(request.user, notification_id)
        notification = services.mark_read(actor=request.user, notification=notification)
        return Response(NotificationOut(notification).data)


class NotificationReadAllView(APIView):
    @extend_schema(request=None, responses=ReadAllOut, summary="Mark all yours read")
    def post(self, request: Request) -> Response:
        marked = services.mark_all_read(actor=request.user)
        return Response(ReadAllOut({"marked": marked}).data)


class PreferencesView(APIView):
    @extend_schema(
        responses=PreferencesOut, summary="How each kind of notification reaches you by email"
    )
    def get(self, request: Request) -> Response:
        return Response(_preferences_out(selectors.preferences_of(request.user)))

    @extend_schema(
        request=PreferencesIn, responses=PreferencesOut, summary="Choose how kinds reach you"
    )
    def put(self, request: Request) -> Response:
        serializer = PreferencesIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            choices = services.set_preferences(
                actor=request.user, choices=serializer.validated_data["preferences"]
            )
        except InvalidPreferences as error:
            # Name the fields as the body does: preferences.<kind>.
            fields = {f"preferences.{kind}": messages for kind, messages in error.fields.items()}
            raise InvalidPreferences(error.message, fields=fields) from None
        return Response(_preferences_out(choices))
