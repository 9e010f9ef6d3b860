from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages whatever is added meanwhile; each view names its `ordering`."""

    ordering = "-pk"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
