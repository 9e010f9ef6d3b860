"""Endpoints that other systems call, authenticated by a signature instead of a session."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from dashboard import limits
from dashboard.api.errors import error_json
from dashboard.middleware import client_ip
from governance.errors import DomainError
from governance.registry import services


@csrf_exempt  # MLflow signs its deliveries (HMAC); it has no session or CSRF token
@require_POST
def mlflow_webhook(request: HttpRequest) -> JsonResponse:
    """MLflow's registry webhooks: check the delivery, then sync the model it names."""
    address = client_ip(request)
    if (wait := limits.over("webhooks", address)) is not None:
        refused = error_json(429, "throttled", "Too many webhook deliveries; try again later.")
        refused["Retry-After"] = str(wait)
        return refused
    limits.spend("webhooks", address)
    try:
        delivery = services.accept_webhook(
            delivery_id=request.headers.get("X-MLflow-Delivery-Id", ""),
            timestamp=request.headers.get("X-MLflow-Timestamp", ""),
            signature=request.headers.get("X-MLflow-Signature", ""),
            body=request.body,
        )
    except DomainError as error:
        return error_json(error.status, error.code, error.message)
    return JsonResponse(
        {"accepted": delivery.delivery_id, "model": delivery.model_name}, status=202
    )
