"""Who may see and press what in the admin: every ModelAdmin of every app is built on AppScopedAdmin.

Two rules, applied once here rather than in each admin:

- **Staff per App.** A superuser reaches every App; any other staff user only the Apps granted to them
  (flows.AppAccess), as a viewer (reads) or an editor (changes what their Django permissions allow).
  Each admin names the path from its model to the App (`app_path = "endpoint__app"`); lists, search,
  filters, change pages, custom pages, foreign-key choices and actions all go through that one scope.
- **Buttons name their permission.** Every action declares `permissions=[...]`, and a POST naming an
  action the user is not offered is refused (403) rather than quietly ignored. Custom pages load their
  object with `checked_object(request, object_id, "change")`, which answers 404 outside the user's Apps
  and 403 without the named permission.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from . import selectors
from .models import App

ALL_APPS = None


def app_scope(request: HttpRequest, *, editing: bool = False) -> frozenset[int] | None:
    """The Apps this request's user may read (or change); None: every App. Read once per request."""
    key = "_staff_apps_editing" if editing else "_staff_apps"
    if not hasattr(request, key):
        setattr(request, key, selectors.staff_app_ids(request.user, editing=editing))
    return getattr(request, key)


def app_path_of(model: type[Model]) -> str | None:
    """The lookup from a model to its App ("" for App itself), as its admin or inline declares it;
    None for models that belong to no App (users, groups)."""
    if model is App:
        return ""
    model_admin = admin.site._registry.get(model)
    if model_admin is not None and hasattr(model_admin, "app_path"):
        return model_admin.app_path
    for field, path in (("app", "app"), ("flow", "flow__app")):
        try:
            if model._meta.get_field(field).is_relation:
                return path
        except FieldDoesNotExist:
            continue
    return None


def in_apps(queryset: QuerySet, path: str, apps: frozenset[int] | None) -> QuerySet:
    if apps is ALL_APPS:
        return queryset
    return queryset.filter(**{f"{path}__in" if path else "pk__in": apps})


def app_pk_of(obj: Model, path: str) -> int | None:
    """The pk of the App an object belongs to, following `path` ("" for an App itself)."""
    if not path:
        return obj.pk
    *steps, last = path.split("__")
    for step in steps:
        obj = getattr(obj, step, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def _may_edit(request: HttpRequest, app_pk: int | None) -> bool:
    editable = app_scope(request, editing=True)
    return editable is ALL_APPS or app_pk in editable


def _choices(request: HttpRequest, model: type[Model], queryset: QuerySet | None, *, editing: bool) -> QuerySet | None:
    path = app_path_of(model)
    if path is None:
        return queryset
    base = queryset if queryset is not None else model._default_manager.all()
    return in_apps(base, path, app_scope(request, editing=editing))


class AppScopedFormfields:
    """Foreign-key and many-to-many choices limited to rows of the Apps the user edits, so a form cannot
    create or move a row into another App, nor show another App's names."""

    def formfield_for_foreignkey(self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any):  # noqa: ANN201
        kwargs["queryset"] = _choices(request, db_field.related_model, kwargs.get("queryset"), editing=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: models.ManyToManyField, request: HttpRequest, **kwargs: Any):  # noqa: ANN201
        kwargs["queryset"] = _choices(request, db_field.related_model, kwargs.get("queryset"), editing=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


class ActionsNamePermissions(admin.ModelAdmin):
    """A POST naming an action the user is not offered is refused, where Django would show the list
    again as if nothing had been asked."""

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # An empty choice ("Go" with no action chosen) is left to Django, which says so.
        if request.method == "POST" and request.POST.get("action") \
                and request.POST["action"] not in self.get_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


class AppScopedAdmin(AppScopedFormfields, ActionsNamePermissions):
    app_path = "app"

    # --- what the user sees ---

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return in_apps(super().get_queryset(request), self.app_path, app_scope(request))

    def get_list_filter(self, request: HttpRequest) -> list:
        # A related filter lists every row of its model (every App's name, every flow) unless told to
        # list only those the user's own rows point at.
        if app_scope(request) is ALL_APPS:
            return list(super().get_list_filter(request))
        narrowed: list = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and get_fields_from_path(self.model, entry)[-1].is_relation:
                entry = (entry, admin.RelatedOnlyFieldListFilter)
            narrowed.append(entry)
        return narrowed

    # --- what the user may change ---

    def _edits(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None:
            editable = app_scope(request, editing=True)
            return editable is ALL_APPS or bool(editable)
        return _may_edit(request, app_pk_of(obj, self.app_path))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        visible = app_scope(request)
        return obj is None or visible is ALL_APPS or app_pk_of(obj, self.app_path) in visible

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self._edits(request, None)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._edits(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._edits(request, obj)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        # The form's choices already keep a row in the user's Apps; this is the last word.
        if not self._edits(request, obj):
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> Any:
        # Another App's row and a row that never was answer alike: not found, and nothing said about it.
        raise Http404

    def checked_object(self, request: HttpRequest, object_id: str, permission: str) -> Any:
        """The object a custom page acts on: 404 outside the user's Apps, 403 without the named
        permission ("view", "change", "delete")."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        if not getattr(self, f"has_{permission}_permission")(request, obj):
            raise PermissionDenied
        return obj

    # --- actions ---

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        return {name: (self._in_editable_apps(func), name, description)
                for name, (func, _name, description) in actions.items()}

    def _in_editable_apps(self, func: Callable) -> Callable:
        def action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
            # Every action writes or sends: each selected row must be in an App the user edits.
            editable = app_scope(request, editing=True)
            if in_apps(queryset, self.app_path, editable).count() != queryset.count():
                raise PermissionDenied
            return func(model_admin, request, queryset)

        return action


class AppScopedInline(AppScopedFormfields, admin.options.InlineModelAdmin):
    """An inline on an App-scoped page: changed only where the page's own object may be changed."""

    def _parent_edits(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None:
            editable = app_scope(request, editing=True)
            return editable is ALL_APPS or bool(editable)
        path = app_path_of(self.parent_model)
        return path is None or _may_edit(request, app_pk_of(obj, path))

    def has_add_permission(self, request: HttpRequest, obj: Model | None) -> bool:
        return super().has_add_permission(request, obj) and self._parent_edits(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._parent_edits(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._parent_edits(request, obj)


class TabularInline(AppScopedInline, admin.TabularInline):
    pass


class StackedInline(AppScopedInline, admin.StackedInline):
    pass
