from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = "Quorum administration"
        admin.site.site_title = "Quorum admin"
        admin.site.index_title = "Site administration"
